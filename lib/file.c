/*
 * file.c - bounded file reads with precise errors, and secret hygiene.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

static int errno_code(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return MTLS_ERR_FILE_NOT_FOUND;
	case EACCES:
	case EPERM:
		return MTLS_ERR_FILE_ACCESS;
	case EISDIR:
		return MTLS_ERR_FILE_NOT_REGULAR;
	case ENOMEM:
		return MTLS_ERR_NO_MEMORY;
	default:
		return MTLS_ERR_FILE_READ;
	}
}

int mtls__read_file(const char *path, int secret, mtls_buf *out, mtls_err *e)
{
	struct stat st;
	unsigned char *data = NULL;
	size_t got = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int err = errno;
		return mtls__fail(e, errno_code(err), "%s: %s", path,
		                  strerror(err));
	}
	if (fstat(fd, &st) != 0) {
		ret = mtls__fail(e, MTLS_ERR_FILE_READ, "%s: %s", path,
		                 strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = mtls__fail(e, MTLS_ERR_FILE_NOT_REGULAR,
		                 "%s: is a directory, expected a file", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = mtls__fail(e, MTLS_ERR_FILE_NOT_REGULAR,
		                 "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size == 0) {
		ret = mtls__fail(e, MTLS_ERR_FILE_EMPTY, "%s: file is empty",
		                 path);
		goto out;
	}
	if ((unsigned long long)st.st_size > MTLS_MAX_FILE_SIZE) {
		ret = mtls__fail(e, MTLS_ERR_FILE_TOO_LARGE,
		                 "%s: file is too large (%lld bytes, limit %u)",
		                 path, (long long)st.st_size,
		                 MTLS_MAX_FILE_SIZE);
		goto out;
	}
	data = malloc((size_t)st.st_size + 1);
	if (data == NULL) {
		ret = mtls__fail(e, MTLS_ERR_NO_MEMORY, "%s: out of memory",
		                 path);
		goto out;
	}
	/* Read what fstat promised; a file that shrinks is read as it is. */
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = mtls__fail(e, MTLS_ERR_FILE_READ, "%s: %s", path,
			                 strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got == 0) {
		ret = mtls__fail(e, MTLS_ERR_FILE_EMPTY, "%s: file is empty",
		                 path);
		goto out;
	}
	data[got] = '\0';
	out->data = data;
	out->len = got;
	out->secret = secret;
	data = NULL;
	ret = 0;
out:
	if (data != NULL) {
		if (secret)
			mbedtls_platform_zeroize(data, (size_t)st.st_size + 1);
		free(data);
	}
	close(fd);
	return ret;
}

int mtls__copy_mem(const void *p, size_t len, int secret, mtls_buf *out,
                   mtls_err *e)
{
	if (p == NULL)
		return mtls__fail(e, MTLS_ERR_INVALID_ARG,
		                  "<memory>: NULL buffer");
	if (len == 0)
		return mtls__fail(e, MTLS_ERR_FILE_EMPTY,
		                  "<memory>: buffer is empty");
	if (len > MTLS_MAX_FILE_SIZE)
		return mtls__fail(e, MTLS_ERR_FILE_TOO_LARGE,
		                  "<memory>: buffer is too large (%zu bytes, "
		                  "limit %u)", len, MTLS_MAX_FILE_SIZE);
	out->data = malloc(len + 1);
	if (out->data == NULL)
		return mtls__fail(e, MTLS_ERR_NO_MEMORY,
		                  "<memory>: out of memory");
	memcpy(out->data, p, len);
	out->data[len] = '\0';
	out->len = len;
	out->secret = secret;
	return 0;
}

void mtls__buf_free(mtls_buf *b)
{
	if (b == NULL || b->data == NULL)
		return;
	if (b->secret)
		mbedtls_platform_zeroize(b->data, b->len + 1);
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

/* More "-----BEGIN CERTIFICATE-----" lines than END lines: the text was
 * cut short. */
int mtls__pem_truncated(const char *text)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	const char *p;
	int open = 0;

	for (p = text; (p = strstr(p, begin)) != NULL; p += sizeof(begin) - 1)
		open++;
	for (p = text; (p = strstr(p, end)) != NULL; p += sizeof(end) - 1)
		open--;
	return open > 0;
}

const char *mtls__display(const char *path)
{
	return path != NULL ? path : "<memory>";
}

char *mtls__strdup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

void mtls__free_secret_str(char *s)
{
	if (s == NULL)
		return;
	mbedtls_platform_zeroize(s, strlen(s));
	free(s);
}

unsigned mtls__key_file_exposed(const char *path)
{
	struct stat st;

	if (path == NULL || stat(path, &st) != 0)
		return 0;
	return (unsigned)(st.st_mode & 077) ? (unsigned)(st.st_mode & 0777) : 0;
}
