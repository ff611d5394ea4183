/*
 * trust.c - trust anchors (CA bundles, directories, the OS store) and CRLs.
 */
#include "internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Where curl and Go look on common systems, bundles before directories. */
static const char *const system_files[] = {
	"/etc/ssl/certs/ca-certificates.crt",               /* Debian, Ubuntu, Gentoo */
	"/etc/pki/tls/certs/ca-bundle.crt",                 /* Fedora, RHEL 6 */
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* CentOS, RHEL 7+ */
	"/etc/ssl/ca-bundle.pem",                           /* openSUSE */
	"/etc/pki/tls/cacert.pem",                          /* OpenELEC */
	"/etc/ssl/cert.pem",                                /* Alpine, macOS, BSDs */
	"/usr/local/etc/openssl/cert.pem",                  /* Homebrew-like */
	NULL,
};
static const char *const system_dirs[] = {
	"/etc/ssl/certs",     /* SLES, Debian without the bundle */
	"/etc/pki/tls/certs", /* Fedora, RHEL */
	"/system/etc/security/cacerts", /* Android */
	NULL,
};

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_pem(const mtls_buf *b)
{
	return strstr((const char *)b->data, "-----BEGIN ") != NULL;
}

static size_t parse_len(const mtls_buf *b)
{
	return is_pem(b) ? b->len + 1 : b->len;
}

static int count_crts(const mbedtls_x509_crt *c)
{
	int n = 0;

	for (; c != NULL && c->raw.p != NULL; c = c->next)
		n++;
	return n;
}

/* Adds the certificates of one buffer.  strict: any unparsable certificate
 * is an error (a user's bundle); otherwise it is skipped (the OS store
 * holds some that mbedTLS cannot parse). */
static int add_buf(mbedtls_x509_crt *ca, const mtls_buf *b, const char *disp,
                   int strict, const char *log_name, mtls_err *e)
{
	const char *text = (const char *)b->data;
	char why[128];
	int ret;

	/* PEM without a CERTIFICATE block (a key, a CRL) holds no
	 * certificate; mbedTLS would try it as DER and report a format error.
	 * Outside strict mode the count check below reports it. */
	if (is_pem(b) && strstr(text, "-----BEGIN CERTIFICATE-----") == NULL)
		return strict ? mtls__fail(e, MTLS_ERR_NO_CERTS,
		                           "%s: no certificate found (PEM "
		                           "without a CERTIFICATE block)",
		                           disp)
		              : 0;
	/* mbedTLS stops quietly at a BEGIN without END: a bundle cut short
	 * would load fewer CAs without a word. */
	if (strict && mtls__pem_truncated(text))
		return mtls__fail(e, MTLS_ERR_CERT_PARSE,
		                  "%s: truncated PEM: BEGIN CERTIFICATE without "
		                  "END CERTIFICATE", disp);
	ret = mbedtls_x509_crt_parse(ca, b->data, parse_len(b));
	if (ret == 0)
		return 0;
	if (ret > 0 && !strict) {
		mtls__log(MTLS_LOG_DEBUG, log_name,
		          "%s: skipped %d certificate(s) mbedTLS cannot parse",
		          disp, ret);
		return 0;
	}
	if (ret > 0)
		return mtls__fail(e, MTLS_ERR_CERT_PARSE,
		                  "%s: %d certificate(s) could not be parsed",
		                  disp, ret);
	if (!strict)
		return 0;
	if (ret == MBEDTLS_ERR_X509_CERT_UNKNOWN_FORMAT && is_pem(b))
		return mtls__fail(e, MTLS_ERR_NO_CERTS,
		                  "%s: no certificate found", disp);
	mtls__mbedtls_reason(ret, why, sizeof(why));
	return mtls__fail(e, MTLS_ERR_CERT_PARSE,
	                  "%s: not a valid certificate bundle (%s)", disp, why);
}

static int add_file(mbedtls_x509_crt *ca, const char *path, int strict,
                    const char *log_name, mtls_err *e)
{
	mtls_buf b = {0};
	int ret = mtls__read_file(path, 0, &b, e);

	if (ret == 0)
		ret = add_buf(ca, &b, path, strict, log_name, e);
	mtls__buf_free(&b);
	return ret;
}

static int cert_file_name(const char *name)
{
	static const char *const ext[] = {".pem", ".crt", ".cer", ".der",
	                                  ".ca", NULL};
	size_t n = strlen(name);

	for (int i = 0; ext[i] != NULL; i++) {
		size_t m = strlen(ext[i]);
		if (n > m && strcasecmp(name + n - m, ext[i]) == 0)
			return 1;
	}
	/* c_rehash links: 8 hex digits, a dot, a digit. */
	return n == 10 && name[8] == '.' && strspn(name, "0123456789abcdef") == 8;
}

static int has_pem_cert(const char *path)
{
	mtls_buf b = {0};
	mtls_err ignore = {0};
	int yes = 0;

	if (mtls__read_file(path, 0, &b, &ignore) == 0)
		yes = strstr((const char *)b.data,
		             "-----BEGIN CERTIFICATE-----") != NULL;
	mtls__buf_free(&b);
	return yes;
}

/* Every regular file of a directory (hidden files and subdirectories
 * skipped), in a stable order so messages are reproducible. */
static int add_dir(mbedtls_x509_crt *ca, const char *dir, int strict,
                   const char *log_name, mtls_err *e)
{
	struct dirent **names = NULL;
	char path[4096];
	int n, i, ret = 0;

	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return mtls__fail(e, MTLS_ERR_FILE_ACCESS,
		                  "%s: directory cannot be read", dir);
	for (i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		if (ret == 0 && name[0] != '.' &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) <
		        sizeof(path) &&
		    is_file(path)) {
			mtls_err fe = {0};
			/* Directories hold other things too (README, keys,
			 * CRLs): a file without certificate text is skipped
			 * unless its name says it is a certificate.  A broken
			 * certificate is named, and fatal when strict. */
			if (add_file(ca, path, strict, log_name, &fe) != 0) {
				if (fe.code == MTLS_ERR_NO_CERTS ||
				    (fe.code == MTLS_ERR_CERT_PARSE &&
				     !cert_file_name(name) && !has_pem_cert(path)))
					mtls__log(MTLS_LOG_DEBUG, log_name,
					          "%s: skipped, not a certificate",
					          path);
				else if (strict)
					ret = mtls__fail(e, fe.code, "%s",
					                 fe.msg);
			}
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

static int load_system(mbedtls_x509_crt *ca, const char *log_name,
                       char *used, size_t used_len, mtls_err *e)
{
	const char *env_file = getenv("SSL_CERT_FILE");
	const char *env_dir = getenv("SSL_CERT_DIR");
	int i;

	if (env_file != NULL && env_file[0] != '\0') {
		snprintf(used, used_len, "%s", env_file);
		return add_file(ca, env_file, 0, log_name, e);
	}
	if (env_dir != NULL && env_dir[0] != '\0') {
		snprintf(used, used_len, "%s", env_dir);
		return add_dir(ca, env_dir, 0, log_name, e);
	}
	for (i = 0; system_files[i] != NULL; i++) {
		if (!is_file(system_files[i]))
			continue;
		snprintf(used, used_len, "%s", system_files[i]);
		return add_file(ca, system_files[i], 0, log_name, e);
	}
	for (i = 0; system_dirs[i] != NULL; i++) {
		if (!is_dir(system_dirs[i]))
			continue;
		snprintf(used, used_len, "%s", system_dirs[i]);
		return add_dir(ca, system_dirs[i], 0, log_name, e);
	}
	return mtls__fail(e, MTLS_ERR_NO_SYSTEM_CA,
	                  "system: no trust store found (set SSL_CERT_FILE, or "
	                  "install ca-certificates)");
}

int mtls__trust_load(const char *ca, const void *mem, size_t len,
                     const char *log_name, mtls_trust **out, mtls_err *e)
{
	char used[4096] = "<memory>";
	mtls_trust *t;
	int ret;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
	atomic_init(&t->refs, 1);
	mbedtls_x509_crt_init(&t->ca);

	if (ca == NULL) {
		mtls_buf b = {0};
		ret = mtls__copy_mem(mem, len, 0, &b, e);
		if (ret == 0)
			ret = add_buf(&t->ca, &b, used, 1, log_name, e);
		mtls__buf_free(&b);
	} else if (strcmp(ca, "system") == 0) {
		ret = load_system(&t->ca, log_name, used, sizeof(used), e);
	} else {
		snprintf(used, sizeof(used), "%s", ca);
		ret = is_dir(ca) ? add_dir(&t->ca, ca, 1, log_name, e)
		                 : add_file(&t->ca, ca, 1, log_name, e);
	}
	if (ret != 0)
		goto fail;

	t->count = count_crts(&t->ca);
	if (t->count == 0) {
		ret = mtls__fail(e, MTLS_ERR_NO_CERTS,
		                 "%s: no CA certificate found", used);
		goto fail;
	}
	t->source = strdup(ca != NULL ? ca : "<memory>");
	if (t->source == NULL ||
	    mtls__warned_init(&t->warned, (size_t)t->count) != 0) {
		ret = mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
		goto fail;
	}
	mtls__log(MTLS_LOG_INFO, log_name,
	          "mTLS trusted CAs configured ca=%s from=%s certificates=%d",
	          t->source, used, t->count);
	*out = t;
	return 0;
fail:
	mtls__trust_unref(t);
	return ret;
}

mtls_trust *mtls__trust_ref(mtls_trust *t)
{
	if (t != NULL)
		atomic_fetch_add(&t->refs, 1);
	return t;
}

void mtls__trust_unref(mtls_trust *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	mbedtls_x509_crt_free(&t->ca);
	free(t->source);
	mtls__warned_free(&t->warned);
	free(t);
}

static size_t count_crls(const mbedtls_x509_crl *c)
{
	size_t n = 0;

	for (; c != NULL && c->version != 0; c = c->next)
		n++;
	return n;
}

int mtls__crl_load(const char *path, const void *mem, size_t len,
                   const char *log_name, mtls_crl **out, mtls_err *e)
{
	const char *disp = mtls__display(path);
	mtls_buf b = {0};
	char why[128], when[40];
	mtls_crl *c;
	time_t next;
	int ret;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
	atomic_init(&c->refs, 1);
	mbedtls_x509_crl_init(&c->crl);

	ret = path != NULL ? mtls__read_file(path, 0, &b, e)
	                   : mtls__copy_mem(mem, len, 0, &b, e);
	if (ret != 0)
		goto fail;
	if (is_pem(&b) && strstr((const char *)b.data, "-----BEGIN X509 CRL-----") == NULL) {
		ret = mtls__fail(e, MTLS_ERR_CRL_PARSE,
		                 "%s: no CRL found (PEM without an X509 CRL "
		                 "block)", disp);
		goto fail;
	}
	ret = mbedtls_x509_crl_parse(&c->crl, b.data, parse_len(&b));
	if (ret != 0) {
		mtls__mbedtls_reason(ret, why, sizeof(why));
		ret = mtls__fail(e, MTLS_ERR_CRL_PARSE,
		                 "%s: not a valid CRL (%s)", disp, why);
		goto fail;
	}
	c->source = strdup(path != NULL ? path : "<memory>");
	if (c->source == NULL ||
	    mtls__warned_init(&c->warned, count_crls(&c->crl)) != 0) {
		ret = mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
		goto fail;
	}
	/* mbedTLS rejects every certificate checked against a stale CRL. */
	next = mtls__x509_time(&c->crl.next_update);
	if (c->crl.next_update.year != 0 && next < time(NULL)) {
		mtls__fmt_time(next, when, sizeof(when));
		mtls__log(MTLS_LOG_WARN, log_name,
		          "%s: CRL is stale (next update was due %s); peers "
		          "checked against it will be refused", disp, when);
		atomic_store(&c->warned.flags[0], 1); /* said: expiry.c */
	}
	mtls__log(MTLS_LOG_INFO, log_name, "mTLS CRL configured crl=%s",
	          disp);
	mtls__buf_free(&b);
	*out = c;
	return 0;
fail:
	mtls__buf_free(&b);
	mtls__crl_unref(c);
	return ret;
}

mtls_crl *mtls__crl_ref(mtls_crl *c)
{
	if (c != NULL)
		atomic_fetch_add(&c->refs, 1);
	return c;
}

void mtls__crl_unref(mtls_crl *c)
{
	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	mbedtls_x509_crl_free(&c->crl);
	free(c->source);
	mtls__warned_free(&c->warned);
	free(c);
}
