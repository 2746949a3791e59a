/*
 * provider_probe: what a long-lived OpenSSL 3 program does with task keys
 * through pkcs11-provider (PKCS11_PROVIDER_MODULE=stint-pkcs11.so), for
 * tests/integration/provider.sh. It loads key A and key B (pkcs11: URIs)
 * once, signs with A, waits for WAIT_FILE (the test ends A's task, then
 * creates it), signs with A again through the provider's cached key and
 * session (which must fail cleanly), then forks: the child signs with B
 * without reloading anything, and so does the parent.
 *
 *   provider_probe URI_A URI_B WAIT_FILE  -> first=ok after-end=refused
 *                                            fork-child=ok fork-parent=ok
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>

static EVP_PKEY *
load_key(const char *uri)
{
	OSSL_STORE_CTX *st = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
	OSSL_STORE_INFO *info;
	EVP_PKEY *key = NULL;

	while (st != NULL && key == NULL && !OSSL_STORE_eof(st)) {
		if ((info = OSSL_STORE_load(st)) == NULL)
			continue;
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
			key = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	OSSL_STORE_close(st);
	return key;
}

/* "ok" or "refused": one SHA-256 signature of a fixed message. */
static const char *
sign(EVP_PKEY *key)
{
	static const unsigned char msg[] = "stint provider probe";
	unsigned char sig[1024];
	size_t len = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	ok = md != NULL &&
	     EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) ==
		     1 &&
	     EVP_DigestSign(md, sig, &len, msg, sizeof(msg)) == 1 && len > 0;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ok ? "ok" : "refused";
}

int
main(int argc, char **argv)
{
	struct timespec pause = {0, 50 * 1000 * 1000};
	struct stat st;
	EVP_PKEY *a, *b;
	int i, status = 1;
	pid_t pid;

	if (argc != 4) {
		fprintf(stderr,
			"usage: provider_probe URI_A URI_B WAIT_FILE\n");
		return 2;
	}
	if (OSSL_PROVIDER_load(NULL, "pkcs11") == NULL ||
	    OSSL_PROVIDER_load(NULL, "default") == NULL) {
		fprintf(stderr, "provider_probe: cannot load the providers\n");
		return 77;
	}
	if ((a = load_key(argv[1])) == NULL ||
	    (b = load_key(argv[2])) == NULL) {
		fprintf(stderr, "provider_probe: cannot load the keys\n");
		return 1;
	}
	printf("first=%s\n", sign(a));
	fflush(stdout);
	for (i = 0; stat(argv[3], &st) != 0; i++) {
		if (i > 20 * 120)
			return 1;
		nanosleep(&pause, NULL);
	}
	printf("after-end=%s\n", sign(a));
	fflush(stdout);
	if ((pid = fork()) == 0) {
		printf("fork-child=%s\n", sign(b));
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	printf("fork-child-exit=%d\n", WIFEXITED(status)
					       ? WEXITSTATUS(status)
					       : 128 + WTERMSIG(status));
	printf("fork-parent=%s\n", sign(b));
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	return 0;
}
