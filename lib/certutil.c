/*
 * certutil.c - turning parsed certificates into text and times.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>


time_t mtls__x509_time(const mbedtls_x509_time *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = t->year - 1900;
	tm.tm_mon = t->mon - 1;
	tm.tm_mday = t->day;
	tm.tm_hour = t->hour;
	tm.tm_min = t->min;
	tm.tm_sec = t->sec;
	return timegm(&tm);
}

void mtls__fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "?");
}

void mtls__fmt_dn(const mbedtls_x509_name *dn, char *buf, size_t len)
{
	if (mbedtls_x509_dn_gets(buf, len, dn) < 0)
		snprintf(buf, len, "?");
}

void mtls__fmt_serial(const mbedtls_x509_buf *serial, char *buf, size_t len)
{
	if (mbedtls_x509_serial_gets(buf, len, serial) < 0)
		snprintf(buf, len, "?");
}

void mtls__fmt_key_type(const mbedtls_pk_context *pk, char *buf, size_t len)
{
	mbedtls_pk_type_t type = mbedtls_pk_get_type(pk);

	if (type == MBEDTLS_PK_RSA) {
		snprintf(buf, len, "RSA %zu", mbedtls_pk_get_bitlen(pk));
		return;
	}
	if (type == MBEDTLS_PK_ECKEY || type == MBEDTLS_PK_ECDSA) {
		const mbedtls_ecp_curve_info *ci =
		    mbedtls_ecp_curve_info_from_grp_id(mtls__pk_ec_group(pk));
		if (ci != NULL) {
			/* mbedTLS names curves "secp256r1"; people say P-256. */
			if (strcmp(ci->name, "secp256r1") == 0)
				snprintf(buf, len, "EC P-256");
			else if (strcmp(ci->name, "secp384r1") == 0)
				snprintf(buf, len, "EC P-384");
			else if (strcmp(ci->name, "secp521r1") == 0)
				snprintf(buf, len, "EC P-521");
			else
				snprintf(buf, len, "EC %s", ci->name);
			return;
		}
	}
	snprintf(buf, len, "%s", mbedtls_pk_get_name(pk));
}

long mtls__days_until(time_t t, time_t now)
{
	double d = difftime(t, now) / 86400.0;
	long whole = (long)d;

	if (d < 0 && (double)whole != d)
		whole--;
	return whole;
}

int mtls__crt_self_issued(const mbedtls_x509_crt *crt)
{
	return crt->issuer_raw.len == crt->subject_raw.len &&
	       memcmp(crt->issuer_raw.p, crt->subject_raw.p,
	              crt->subject_raw.len) == 0;
}

const mbedtls_x509_crt *mtls__crt_find_issuer(const mbedtls_x509_crt *list,
                                              const mbedtls_x509_crt *crt)
{
	for (; list != NULL && list->raw.p != NULL; list = list->next)
		if (list != crt &&
		    crt->issuer_raw.len == list->subject_raw.len &&
		    memcmp(crt->issuer_raw.p, list->subject_raw.p,
		           list->subject_raw.len) == 0)
			return list;
	return NULL;
}
