/* A relying party's check of a Stint client certificate, with
 * libstint-verify: verify_peer LEAF.pem CA-BUNDLE.pem [AGENT [AUDIENCE]]
 * (AGENT "" for any; AUDIENCE: this relying party's name, which the task
 * must list).
 * Build: cc verify_peer.c $(pkg-config --cflags --libs stint-verify) */
#include <stdio.h>

#include <openssl/pem.h>
#include <stint/verify.h>

int
main(int argc, char **argv)
{
	struct stint_peer_identity id;
	X509_STORE *trust = X509_STORE_new();
	FILE *f = argc >= 3 ? fopen(argv[1], "r") : NULL;
	X509 *leaf = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	char err[256];
	int r = -1;

	if (leaf == NULL || X509_STORE_load_file(trust, argv[2]) != 1)
		fprintf(stderr, "usage: verify_peer LEAF.pem CA.pem "
				"[AGENT [AUDIENCE]]\n");
	else if ((r = stint_verify_peer_audience(
			  leaf, NULL, trust, NULL,
			  argc > 3 && argv[3][0] ? argv[3] : NULL, NULL,
			  argc > 4 ? argv[4] : NULL, 0, &id, err,
			  sizeof(err))) != STINT_VERIFY_OK)
		fprintf(stderr, "refused, check %s: %s\n",
			stint_verify_strerror(r), err);
	else
		printf("agent %s task %s not_after %lld\n", id.agent, id.task,
		       (long long)id.not_after);
	if (f != NULL)
		fclose(f);
	X509_free(leaf);
	X509_STORE_free(trust);
	return r == STINT_VERIFY_OK ? 0 : r < 0 ? 2 : 1;
}
