/*
 * test_ctx.c - contexts: lifetime, roles, names, argument checking, and the
 * error detail kept on the object.
 */
#include "common.h"

static void test_new_free_both_roles(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	mtls_ctx *s = mtls_ctx_new(MTLS_ROLE_SERVER);

	(void)state;
	assert_non_null(c);
	assert_non_null(s);
	assert_int_equal(mtls_ctx_role(c), MTLS_ROLE_CLIENT);
	assert_int_equal(mtls_ctx_role(s), MTLS_ROLE_SERVER);
	assert_null(mtls_ctx_error(c));
	assert_null(mtls_ctx_error(s));
	mtls_ctx_free(c);
	mtls_ctx_free(s);
}

static void test_invalid_role(void **state)
{
	(void)state;
	assert_null(mtls_ctx_new((mtls_role)2));
	assert_null(mtls_ctx_new((mtls_role)-1));
	assert_null(mtls_ctx_new((mtls_role)1000));
}

static void test_free_null(void **state)
{
	(void)state;
	mtls_ctx_free(NULL);
}

static void test_many_contexts(void **state)
{
	mtls_ctx *v[64];

	(void)state;
	for (int i = 0; i < 64; i++) {
		v[i] = mtls_ctx_new(i % 2 ? MTLS_ROLE_SERVER : MTLS_ROLE_CLIENT);
		assert_non_null(v[i]);
	}
	for (int i = 0; i < 64; i++)
		mtls_ctx_free(v[i]);
}

static void test_null_ctx_everywhere(void **state)
{
	mtls_cert_info info;
	static const char pem[] = "-----BEGIN CERTIFICATE-----\n";

	(void)state;
	assert_null(mtls_ctx_error(NULL));
	assert_int_equal(mtls_ctx_set_name(NULL, "x"), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_set_expiry_warning(NULL, 5),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_set_key_password(NULL, "pw"),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_load_client_pair(NULL, pki("client-ec.crt"),
	                                       pki("client-ec.key")),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_load_server_pair(NULL, pki("server-ec.crt"),
	                                       pki("server-ec.key")),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_load_client_pair_mem(NULL, pem, sizeof(pem),
	                                           NULL, 0),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_load_server_pair_mem(NULL, pem, sizeof(pem),
	                                           NULL, 0),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_set_trusted_ca(NULL, pki("ca.crt")),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_set_trusted_ca_mem(NULL, pem, sizeof(pem)),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_set_crl(NULL, pki("int.crl")),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_set_crl_mem(NULL, pem, sizeof(pem)),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_cert_info(NULL, &info),
	                 MTLS_ERR_INVALID_ARG);
}

/* The connection settings kept on a context, likewise. */
static void test_null_ctx_settings(void **state)
{
	mtls_ctx *s = mtls_ctx_new(MTLS_ROLE_SERVER);
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);

	(void)state;
	assert_int_equal(mtls_ctx_set_verify(NULL, MTLS_VERIFY_REQUIRE),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_insecure_skip_verify(NULL),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_set_server_name(NULL, "x"),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_set_tls_versions(NULL, MTLS_TLS1_2,
	                                           MTLS_TLS1_2),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_set_alpn(NULL, "h2"), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_set_session_resumption(NULL, 1),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_share_trust(NULL, s), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_share_trust(s, NULL), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_allow_peer(NULL, MTLS_ALLOW_CN, "x"),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_allow_peer(s, MTLS_ALLOW_CN, NULL),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_add_host(NULL, "a.example", s),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_add_host(s, "a.example", NULL),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_add_host(s, NULL, s), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_set_unknown_host(NULL, MTLS_SNI_REFUSE),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_reload(NULL), MTLS_ERR_INVALID_ARG);
	/* Role-bound settings on the other role. */
	assert_int_equal(mtls_ctx_set_verify(c, MTLS_VERIFY_OPTIONAL),
	                 MTLS_ERR_WRONG_ROLE);
	assert_non_null(mtls_ctx_error(c));
	assert_int_equal(mtls_ctx_insecure_skip_verify(s), MTLS_ERR_WRONG_ROLE);
	assert_non_null(mtls_ctx_error(s));
	assert_int_equal(mtls_ctx_share_trust(s, c), MTLS_ERR_WRONG_ROLE);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* NULL arguments other than the context. */
static void test_null_args(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	mtls_ctx *s = mtls_ctx_new(MTLS_ROLE_SERVER);

	(void)state;
	assert_int_equal(mtls_ctx_cert_info(c, NULL), MTLS_ERR_INVALID_ARG);
	check_err(c, mtls_load_client_pair(c, NULL, pki("client-ec.key")),
	          MTLS_ERR_INVALID_ARG, "NULL");
	check_err(c, mtls_load_client_pair(c, NULL, NULL),
	          MTLS_ERR_INVALID_ARG, "NULL");
	check_err(s, mtls_load_server_pair(s, NULL, NULL),
	          MTLS_ERR_INVALID_ARG, "NULL");
	check_err(c, mtls_load_client_pair_mem(c, NULL, 10, NULL, 0),
	          MTLS_ERR_INVALID_ARG, "NULL");
	check_err(s, mtls_load_server_pair_mem(s, NULL, 0, NULL, 0),
	          MTLS_ERR_INVALID_ARG, "NULL");
	check_err(c, mtls_set_trusted_ca(c, NULL), MTLS_ERR_INVALID_ARG,
	          "NULL");
	check_err(s, mtls_set_trusted_ca_mem(s, NULL, 10),
	          MTLS_ERR_INVALID_ARG, "NULL");
	check_err(c, mtls_set_crl(c, NULL), MTLS_ERR_INVALID_ARG, "NULL");
	check_err(s, mtls_set_crl_mem(s, NULL, 0), MTLS_ERR_INVALID_ARG,
	          "NULL");
	mtls_ctx_free(c);
	mtls_ctx_free(s);
}

static void test_set_name(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	char name[200];

	(void)state;
	check_ok(c, mtls_ctx_set_name(c, "payments"));
	check_ok(c, mtls_ctx_set_name(c, ""));
	check_ok(c, mtls_ctx_set_name(c, NULL));

	/* 127 bytes fit, 128 do not. */
	memset(name, 'a', sizeof(name));
	name[127] = '\0';
	check_ok(c, mtls_ctx_set_name(c, name));
	name[127] = 'a';
	name[128] = '\0';
	check_err(c, mtls_ctx_set_name(c, name), MTLS_ERR_INVALID_ARG,
	          "name", "127");
	name[150] = 'a';
	name[199] = '\0';
	check_err(c, mtls_ctx_set_name(c, name), MTLS_ERR_INVALID_ARG,
	          "name");
	mtls_ctx_free(c);
}

/* The name is copied, and a rejected name leaves the previous one. */
static void test_set_name_copied_and_kept(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	char buf[32], longname[300];

	(void)state;
	snprintf(buf, sizeof(buf), "payments");
	check_ok(c, mtls_ctx_set_name(c, buf));
	memset(buf, 'X', sizeof(buf) - 1); /* the caller reuses its buffer */
	memset(longname, 'b', sizeof(longname));
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(mtls_ctx_set_name(c, longname), MTLS_ERR_INVALID_ARG);

	log_capture();
	check_ok(c, mtls_load_client_pair(c, pki("client-ec.crt"),
	                                  pki("client-ec.key")));
	log_stop();
	assert_logged(MTLS_LOG_INFO, "name=payments", NULL, NULL);
	assert_null(log_find(-1, "XXXX", NULL, NULL));
	assert_null(log_find(-1, "bbbb", NULL, NULL));
	mtls_ctx_free(c);
}

static void test_wrong_role(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	mtls_ctx *s = mtls_ctx_new(MTLS_ROLE_SERVER);
	mtls_cert_info info;
	unsigned char *crt, *key;
	size_t crt_len, key_len;

	(void)state;
	check_err(c, mtls_load_server_pair(c, pki("server-ec.crt"),
	                                   pki("server-ec.key")),
	          MTLS_ERR_WRONG_ROLE, "server", "client context");
	check_err(s, mtls_load_client_pair(s, pki("client-ec.crt"),
	                                   pki("client-ec.key")),
	          MTLS_ERR_WRONG_ROLE, "client", "server context");

	crt = slurp_pki("server-ec.crt", &crt_len);
	key = slurp_pki("server-ec.key", &key_len);
	check_err(c, mtls_load_server_pair_mem(c, crt, crt_len, key, key_len),
	          MTLS_ERR_WRONG_ROLE, "client context");
	check_err(s, mtls_load_client_pair_mem(s, crt, crt_len, key, key_len),
	          MTLS_ERR_WRONG_ROLE, "server context");
	free(crt);
	free(key);

	/* Nothing was loaded by the refused calls. */
	assert_int_equal(mtls_ctx_cert_info(c, &info), MTLS_ERR_NOT_CONFIGURED);
	assert_int_equal(mtls_ctx_cert_info(s, &info), MTLS_ERR_NOT_CONFIGURED);

	/* The right calls still work afterwards and clear the error. */
	check_ok(c, mtls_load_client_pair(c, pki("client-ec.crt"),
	                                  pki("client-ec.key")));
	check_ok(s, mtls_load_server_pair(s, pki("server-ec.crt"),
	                                  pki("server-ec.key")));

	/* A wrong-role call on a loaded context keeps its pair. */
	assert_int_equal(mtls_ctx_cert_info(s, &info), 0);
	check_err(s, mtls_load_client_pair(s, pki("client-rsa.crt"),
	                                   pki("client-rsa.key")),
	          MTLS_ERR_WRONG_ROLE, "server context");
	check_info_same(s, &info);
	mtls_ctx_free(c);
	mtls_ctx_free(s);
}

static void test_cert_info_before_load(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	mtls_ctx *s = mtls_ctx_new(MTLS_ROLE_SERVER);
	mtls_cert_info info;

	(void)state;
	assert_int_equal(mtls_ctx_cert_info(c, &info), MTLS_ERR_NOT_CONFIGURED);
	assert_int_equal(mtls_ctx_cert_info(s, &info), MTLS_ERR_NOT_CONFIGURED);
	/* Trust alone does not make an own certificate. */
	check_ok(s, mtls_set_trusted_ca(s, pki("ca.crt")));
	assert_int_equal(mtls_ctx_cert_info(s, &info), MTLS_ERR_NOT_CONFIGURED);
	mtls_ctx_free(c);
	mtls_ctx_free(s);
}

/* The error is the last call's: set by a failure, cleared by a success of
 * any configuration call. */
static void test_error_lifecycle(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	const char *missing = pki("no-such-file.crt");

	(void)state;
	assert_null(mtls_ctx_error(c));
	check_err(c, mtls_load_client_pair(c, missing, pki("client-ec.key")),
	          MTLS_ERR_FILE_NOT_FOUND, missing);
	check_ok(c, mtls_load_client_pair(c, pki("client-ec.crt"),
	                                  pki("client-ec.key")));

	check_err(c, mtls_set_trusted_ca(c, missing), MTLS_ERR_FILE_NOT_FOUND,
	          missing);
	check_ok(c, mtls_ctx_set_expiry_warning(c, 10));
	check_err(c, mtls_set_crl(c, missing), MTLS_ERR_FILE_NOT_FOUND,
	          missing);
	check_ok(c, mtls_ctx_set_name(c, "upstream-a"));
	check_err(c, mtls_set_crl(c, missing), MTLS_ERR_FILE_NOT_FOUND);
	check_ok(c, mtls_ctx_set_key_password(c, "x"));
	check_err(c, mtls_set_crl(c, missing), MTLS_ERR_FILE_NOT_FOUND);
	check_ok(c, mtls_set_trusted_ca(c, pki("ca.crt")));
	check_err(c, mtls_set_crl(c, missing), MTLS_ERR_FILE_NOT_FOUND);
	check_ok(c, mtls_set_crl(c, pki("int.crl")));

	/* A second failure replaces the first one's message. */
	check_err(c, mtls_set_crl(c, missing), MTLS_ERR_FILE_NOT_FOUND,
	          "no-such-file.crt");
	check_err(c, mtls_set_trusted_ca(c, pki("empty.pem")),
	          MTLS_ERR_FILE_EMPTY, "empty.pem");
	assert_null(strstr(mtls_ctx_error(c), "no-such-file"));
	mtls_ctx_free(c);
}

/* A failure is also delivered to the log callback, at MTLS_LOG_ERROR, with
 * the same text and the context's name. */
static void test_error_is_logged(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	const char *missing = pki("no-such-file.crt");

	(void)state;
	check_ok(c, mtls_ctx_set_name(c, "up1"));
	log_capture();
	check_err(c, mtls_load_client_pair(c, missing, NULL),
	          MTLS_ERR_FILE_NOT_FOUND, missing);
	log_stop();
	assert_logged(MTLS_LOG_ERROR, mtls_ctx_error(c), "name=up1", NULL);
	mtls_ctx_free(c);
}

static void test_expiry_warning_setter(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);

	(void)state;
	check_ok(c, mtls_ctx_set_expiry_warning(c, 0));
	check_ok(c, mtls_ctx_set_expiry_warning(c, 30));
	check_ok(c, mtls_ctx_set_expiry_warning(c, 100000));
	mtls_ctx_free(c);
}

static void test_key_password_setter(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_SERVER);
	char pw[16];

	(void)state;
	snprintf(pw, sizeof(pw), "testpass");
	check_ok(c, mtls_ctx_set_key_password(c, pw));
	memset(pw, 0, sizeof(pw)); /* copied: the caller may wipe its own */
	check_ok(c, mtls_load_server_pair(c, pki("server-rsa.crt"),
	                                  pki("server-enc-legacy.key")));
	check_ok(c, mtls_ctx_set_key_password(c, "other"));
	check_err(c, mtls_load_server_pair(c, pki("server-rsa.crt"),
	                                   pki("server-enc-legacy.key")),
	          MTLS_ERR_KEY_PASSWORD, "server-enc-legacy.key");
	check_ok(c, mtls_ctx_set_key_password(c, ""));
	check_ok(c, mtls_ctx_set_key_password(c, NULL));
	check_err(c, mtls_load_server_pair(c, pki("server-rsa.crt"),
	                                   pki("server-enc-legacy.key")),
	          MTLS_ERR_KEY_PASSWORD_REQUIRED, "server-enc-legacy.key");
	mtls_ctx_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_free_both_roles),
	    cmocka_unit_test(test_invalid_role),
	    cmocka_unit_test(test_free_null),
	    cmocka_unit_test(test_many_contexts),
	    cmocka_unit_test(test_null_ctx_everywhere),
	    cmocka_unit_test(test_null_ctx_settings),
	    cmocka_unit_test(test_null_args),
	    cmocka_unit_test(test_set_name),
	    cmocka_unit_test(test_set_name_copied_and_kept),
	    cmocka_unit_test(test_wrong_role),
	    cmocka_unit_test(test_cert_info_before_load),
	    cmocka_unit_test(test_error_lifecycle),
	    cmocka_unit_test(test_error_is_logged),
	    cmocka_unit_test(test_expiry_warning_setter),
	    cmocka_unit_test(test_key_password_setter),
	};

	pki_dir();
	return cmocka_run_group_tests_name("ctx", tests, NULL, NULL);
}
