/*
 * test_error.c - error codes: their text and their categories.
 */
#include "common.h"
#include "internal.h"

/* Every code in mtls.h, with the category its band promises. */
static const struct {
	int code;
	mtls_err_cat cat;
} all_codes[] = {
	{MTLS_ERR_INVALID_ARG, MTLS_CAT_USAGE},
	{MTLS_ERR_WRONG_ROLE, MTLS_CAT_USAGE},
	{MTLS_ERR_UNSUPPORTED, MTLS_CAT_USAGE},
	{MTLS_ERR_NOT_CONFIGURED, MTLS_CAT_USAGE},
	{MTLS_ERR_FILE_NOT_FOUND, MTLS_CAT_FILE},
	{MTLS_ERR_FILE_ACCESS, MTLS_CAT_FILE},
	{MTLS_ERR_FILE_NOT_REGULAR, MTLS_CAT_FILE},
	{MTLS_ERR_FILE_EMPTY, MTLS_CAT_FILE},
	{MTLS_ERR_FILE_TOO_LARGE, MTLS_CAT_FILE},
	{MTLS_ERR_FILE_READ, MTLS_CAT_FILE},
	{MTLS_ERR_CERT_PARSE, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_KEY_PARSE, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_KEY_PASSWORD_REQUIRED, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_KEY_PASSWORD, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_KEY_MISMATCH, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_KEY_TYPE, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_CERT_EXPIRED, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_CERT_NOT_YET_VALID, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_CERT_EKU, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_CHAIN_ORDER, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_NO_CERTS, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_CRL_PARSE, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_NO_SYSTEM_CA, MTLS_CAT_CREDENTIAL},
	{MTLS_ERR_PEER_NO_CERT, MTLS_CAT_PEER},
	{MTLS_ERR_PEER_UNTRUSTED, MTLS_CAT_PEER},
	{MTLS_ERR_PEER_EXPIRED, MTLS_CAT_PEER},
	{MTLS_ERR_PEER_NOT_YET_VALID, MTLS_CAT_PEER},
	{MTLS_ERR_PEER_REVOKED, MTLS_CAT_PEER},
	{MTLS_ERR_PEER_EKU, MTLS_CAT_PEER},
	{MTLS_ERR_PEER_NAME, MTLS_CAT_PEER},
	{MTLS_ERR_PEER_POLICY, MTLS_CAT_PEER},
	{MTLS_ERR_PEER_NOT_VERIFIED, MTLS_CAT_PEER},
	{MTLS_ERR_IO, MTLS_CAT_TLS},
	{MTLS_ERR_CLOSED, MTLS_CAT_TLS},
	{MTLS_ERR_ALERT, MTLS_CAT_TLS},
	{MTLS_ERR_HANDSHAKE, MTLS_CAT_TLS},
	{MTLS_ERR_STATE, MTLS_CAT_TLS},
	{MTLS_ERR_NO_MEMORY, MTLS_CAT_INTERNAL},
	{MTLS_ERR_RNG, MTLS_CAT_INTERNAL},
	{MTLS_ERR_INTERNAL, MTLS_CAT_INTERNAL},
};
#define N_CODES (sizeof(all_codes) / sizeof(all_codes[0]))

static void test_strerror_known(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_CODES; i++) {
		const char *s = mtls_strerror(all_codes[i].code);
		assert_non_null(s);
		assert_true(s[0] != '\0');
		if (strcmp(s, "unknown error") == 0) {
			print_error("code %d has no text\n", all_codes[i].code);
			fail();
		}
	}
}

/* Two codes with the same text would be indistinguishable in a log. */
static void test_strerror_distinct(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_CODES; i++)
		for (size_t j = i + 1; j < N_CODES; j++)
			if (strcmp(mtls_strerror(all_codes[i].code),
			           mtls_strerror(all_codes[j].code)) == 0) {
				print_error("codes %d and %d share \"%s\"\n",
				            all_codes[i].code, all_codes[j].code,
				            mtls_strerror(all_codes[i].code));
				fail();
			}
}

static void test_strerror_success_and_want(void **state)
{
	(void)state;
	assert_non_null(mtls_strerror(0));
	assert_string_not_equal(mtls_strerror(0), "unknown error");
	assert_string_not_equal(mtls_strerror(MTLS_WANT_READ), "unknown error");
	assert_string_not_equal(mtls_strerror(MTLS_WANT_WRITE),
	                        "unknown error");
	assert_string_not_equal(mtls_strerror(MTLS_WANT_READ),
	                        mtls_strerror(MTLS_WANT_WRITE));
}

static void test_strerror_unknown(void **state)
{
	static const int unknown[] = {-1,   1,    42,   -100, -199, -299,
	                              -350, -499, -600, -604, -700, -9999,
	                              INT32_MIN, INT32_MAX};

	(void)state;
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		const char *s = mtls_strerror(unknown[i]);
		assert_non_null(s);
		assert_string_equal(s, "unknown error");
	}
}

static void test_category_bands(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_CODES; i++) {
		mtls_err_cat c = mtls_err_category(all_codes[i].code);
		if (c != all_codes[i].cat) {
			print_error("code %d: category %d, expected %d\n",
			            all_codes[i].code, (int)c,
			            (int)all_codes[i].cat);
			fail();
		}
		/* The documented arithmetic: err / 100 * -1. */
		assert_int_equal((int)c, all_codes[i].code / 100 * -1);
	}
}

static void test_category_none(void **state)
{
	(void)state;
	assert_int_equal(mtls_err_category(0), MTLS_CAT_NONE);
	assert_int_equal(mtls_err_category(MTLS_WANT_READ), MTLS_CAT_NONE);
	assert_int_equal(mtls_err_category(MTLS_WANT_WRITE), MTLS_CAT_NONE);
	/* Positive values (byte counts) are not errors either. */
	assert_int_equal(mtls_err_category(1), MTLS_CAT_NONE);
	assert_int_equal(mtls_err_category(16384), MTLS_CAT_NONE);
}

static void test_category_examples(void **state)
{
	(void)state;
	assert_int_equal(mtls_err_category(MTLS_ERR_FILE_NOT_FOUND),
	                 MTLS_CAT_FILE);
	assert_int_equal(mtls_err_category(MTLS_ERR_INVALID_ARG),
	                 MTLS_CAT_USAGE);
	assert_int_equal(mtls_err_category(MTLS_ERR_CERT_EXPIRED),
	                 MTLS_CAT_CREDENTIAL);
	assert_int_equal(mtls_err_category(MTLS_ERR_PEER_UNTRUSTED),
	                 MTLS_CAT_PEER);
	assert_int_equal(mtls_err_category(MTLS_ERR_CLOSED), MTLS_CAT_TLS);
	assert_int_equal(mtls_err_category(MTLS_ERR_NO_MEMORY),
	                 MTLS_CAT_INTERNAL);
}

/* Unknown negative codes must still land in some category a caller can
 * act on: never NONE (that would read as "call again"). */
static void test_category_unknown(void **state)
{
	static const int odd[] = {-4, -50, -99, -700, -9999, INT32_MIN};

	(void)state;
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
		assert_int_not_equal(mtls_err_category(odd[i]), MTLS_CAT_NONE);
	/* In-band but unassigned codes keep their band. */
	assert_int_equal(mtls_err_category(-250), MTLS_CAT_FILE);
	assert_int_equal(mtls_err_category(-399), MTLS_CAT_CREDENTIAL);
}

static void test_mbedtls_version(void **state)
{
	const char *v = mtls_mbedtls_version();

	(void)state;
	assert_non_null(v);
	assert_true(strncmp(v, "2.", 2) == 0 || strncmp(v, "3.", 2) == 0 ||
	            strncmp(v, "4.", 2) == 0);
	assert_non_null(strchr(v + 2, '.'));
}

static void test_version_macros(void **state)
{
	char want[32];

	(void)state;
	snprintf(want, sizeof(want), "%d.%d.%d", MTLS_VERSION_MAJOR,
	         MTLS_VERSION_MINOR, MTLS_VERSION_PATCH);
	assert_string_equal(want, MTLS_VERSION_STRING);
	/* the library's own answer, at run time: the same build here */
	assert_string_equal(mtls_version(), MTLS_VERSION_STRING);
	assert_ptr_equal(mtls_version(), mtls_version());
}

/* #11 finding 10: peer-controlled text (a certificate's subject, an SNI)
 * in a message can forge nothing: every byte outside printable ASCII is
 * written \xNN, a backslash twice, and the result always fits. */
static void test_escape(void **state)
{
	char out[64];
	mtls_err e = {0};

	(void)state;
	mtls__escape(out, sizeof(out), "CN=a\nlevel=ERROR x\x1b[31m\\q\xc3\xa9");
	assert_string_equal(out,
	                    "CN=a\\x0alevel=ERROR x\\x1b[31m\\\\q\\xc3\\xa9");
	/* cut at a whole escape, never in the middle of one */
	mtls__escape(out, 7, "ab\ncd");
	assert_string_equal(out, "ab\\x0a");
	mtls__escape(out, 6, "ab\ncd");
	assert_string_equal(out, "ab");
	mtls__escape(out, 1, "x");
	assert_string_equal(out, "");
	/* failure details go through it */
	assert_int_equal(mtls__fail(&e, MTLS_ERR_PEER_POLICY,
	                            "client certificate (%s) refused",
	                            "CN=x\r\nforged line"),
	                 MTLS_ERR_PEER_POLICY);
	assert_null(strpbrk(e.msg, "\r\n"));
	assert_non_null(strstr(e.msg, "CN=x\\x0d\\x0aforged line"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strerror_known),
	    cmocka_unit_test(test_strerror_distinct),
	    cmocka_unit_test(test_strerror_success_and_want),
	    cmocka_unit_test(test_strerror_unknown),
	    cmocka_unit_test(test_category_bands),
	    cmocka_unit_test(test_category_none),
	    cmocka_unit_test(test_category_examples),
	    cmocka_unit_test(test_category_unknown),
	    cmocka_unit_test(test_mbedtls_version),
	    cmocka_unit_test(test_version_macros),
	    cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
