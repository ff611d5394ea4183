/*
 * resolve_shim.c - test-only LD_PRELOAD library: getaddrinfo() for names
 * ending in ".mtls.test" answers from the file named by
 * MTLS_TEST_HOSTS_FILE ("NAME ADDRESS" lines, read at every call), so a
 * test can change what a name resolves to while a program runs, without
 * touching /etc/hosts or DNS.  Every other name goes to the real
 * getaddrinfo.  A name missing from the file fails with EAI_NONAME.
 * Used by tests/test_proxy_targets.sh; never installed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUFFIX ".mtls.test"

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
                      struct addrinfo **);

int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res)
{
	gai_fn real = (gai_fn)(void (*)(void))dlsym(RTLD_NEXT, "getaddrinfo");
	size_t nl = node != NULL ? strlen(node) : 0, sl = strlen(SUFFIX);
	const char *path = getenv("MTLS_TEST_HOSTS_FILE");
	struct addrinfo h;
	char line[512], name[256], addr[128];
	FILE *f;
	int found = 0;

	if (real == NULL)
		return EAI_SYSTEM;
	if (nl <= sl || strcmp(node + nl - sl, SUFFIX) != 0 || path == NULL)
		return real(node, service, hints, res);
	if ((f = fopen(path, "r")) == NULL)
		return EAI_NONAME;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = sscanf(line, "%255s %127s", name, addr) == 2 &&
		        strcmp(name, node) == 0;
	fclose(f);
	if (!found)
		return EAI_NONAME;
	if (hints != NULL)
		h = *hints;
	else
		memset(&h, 0, sizeof(h));
	h.ai_flags |= AI_NUMERICHOST;
	return real(addr, service, &h, res);
}
