/*
 * deleg_certs DIR: delegated leaves for verify-delegated.sh, issued by
 * the CA code (stint_cert_issue) with software keys and the delegation
 * fields of struct stint_leaf_req set, as stintd sets them for a
 * DELEGATE. Writes into DIR:
 *   ca.pem           the root (trust anchor)
 *   parent.pem       a top-level task of agent "lead"
 *   child.pem        its child for agent "worker" (depth 1)
 *   grand.pem        the child's child for agent "sub" (depth 2)
 *   late.pem         a child of parent.pem that outlives it
 *   forged-path.pem  child.pem re-signed with the path lead,other
 *   forged-depth.pem child.pem re-signed with depth 2 (2 names)
 *   forged-root.pem  child.pem re-signed with another root at depth 1
 * and ids.txt: the three task ids, one a line. The forged leaves are
 * what a broken or compromised issuer could sign; a relying party must
 * refuse them.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "attest/ca.h"
#include "attest/cert_ext.h"

#define PARENT_ID "t-00000000000000000000000000000001"
#define CHILD_ID  "t-00000000000000000000000000000002"
#define GRAND_ID  "t-00000000000000000000000000000003"
#define LATE_ID   "t-00000000000000000000000000000004"

static const char *dir;
static EVP_PKEY *ca_key;
static X509 *root;

static void
die(const char *what)
{
	fprintf(stderr, "deleg_certs: %s\n", what);
	exit(1);
}

static void
write_pem(const char *name, X509 *x)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || PEM_write_X509(f, x) != 1 ||
	    fclose(f) != 0)
		die(path);
}

/* A leaf for req with a fresh task key. */
static X509 *
issue(struct stint_leaf_req *req)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	struct stint_bytes spki;
	uint8_t *der = NULL;
	X509 *x = NULL;
	char err[300];
	int n;

	if (key == NULL || (n = i2d_PUBKEY(key, &der)) <= 0)
		die("no task key");
	spki.ptr = der;
	spki.len = (size_t)n;
	req->spki = &spki;
	if (stint_cert_issue(ca_key, root, req, &x, err, sizeof(err)) != 0)
		die(err);
	req->spki = NULL;
	OPENSSL_free(der);
	EVP_PKEY_free(key);
	return x;
}

static void
sha256_of(X509 *x, uint8_t out[32])
{
	unsigned int n = 0;

	if (X509_digest(x, EVP_sha256(), out, &n) != 1 || n != 32)
		die("cannot hash a certificate");
}

/* A copy of x whose delegation block is changed: path's last name set to
 * last (when not NULL), depth set (when > 0), root set (when not NULL);
 * then re-signed by the CA. */
static X509 *
forge(X509 *x, const char *last, long depth, const char *root_task)
{
	int i = X509_get_ext_by_OBJ(x, stint_task_ext_oid(), -1);
	const ASN1_OCTET_STRING *os;
	ASN1_OCTET_STRING *nos = ASN1_OCTET_STRING_new();
	const unsigned char *p;
	unsigned char *der = NULL;
	STINT_TASK_EXT *e;
	STINT_TASK_DELEGATION *d;
	X509_EXTENSION *ext;
	X509 *y = X509_dup(x);
	int len;

	if (y == NULL || i < 0 || nos == NULL)
		die("no task extension to forge");
	os = X509_EXTENSION_get_data(X509_get_ext(y, i));
	p = ASN1_STRING_get0_data(os);
	if ((e = d2i_STINT_TASK_EXT(NULL, &p, ASN1_STRING_length(os))) ==
		    NULL ||
	    (d = e->delegation) == NULL)
		die("no delegation block to forge");
	if (last != NULL)
		ASN1_STRING_set(
			sk_ASN1_UTF8STRING_value(
				d->path, sk_ASN1_UTF8STRING_num(d->path) - 1),
			last, -1);
	if (depth > 0)
		ASN1_INTEGER_set(d->depth, depth);
	if (root_task != NULL)
		ASN1_STRING_set(d->root_task, root_task, -1);
	if ((len = i2d_STINT_TASK_EXT(e, &der)) <= 0 ||
	    !ASN1_OCTET_STRING_set(nos, der, len))
		die("cannot encode the forged extension");
	X509_EXTENSION_free(X509_delete_ext(y, i));
	ext = X509_EXTENSION_create_by_OBJ(NULL, stint_task_ext_oid(), 0, nos);
	if (ext == NULL || X509_add_ext(y, ext, -1) != 1 ||
	    X509_sign(y, ca_key, EVP_sha256()) <= 0)
		die("cannot re-sign the forged leaf");
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(nos);
	OPENSSL_free(der);
	STINT_TASK_EXT_free(e);
	return y;
}

int
main(int argc, char **argv)
{
	struct stint_leaf_req req;
	uint8_t ev[32] = {0}, h_parent[32], h_child[32];
	int64_t now = (int64_t)time(NULL);
	X509 *parent, *child, *grand, *late, *f;
	char err[300];
	FILE *ids;
	char path[4096];

	if (argc != 2)
		die("usage: deleg_certs DIR");
	dir = argv[1];
	if ((ca_key = EVP_EC_gen("P-256")) == NULL ||
	    stint_ca_root_build(ca_key, "test.example", now, 1, &root, err,
				sizeof(err)) != 0)
		die("cannot build the root");
	write_pem("ca.pem", root);

	memset(&req, 0, sizeof(req));
	req.trust_domain = "test.example";
	req.agent = "lead";
	req.task_id = PARENT_ID;
	req.intent = "plan the release";
	req.parent_task = "";
	req.attestation_kind = "pkcs11";
	req.evidence_digest = ev;
	req.not_before = now - 60;
	req.not_after = now + 3600;
	req.audiences = "api,db";
	parent = issue(&req);
	req.audiences = "db"; /* the tree narrows */
	write_pem("parent.pem", parent);

	sha256_of(parent, h_parent);
	req.agent = "worker";
	req.task_id = CHILD_ID;
	req.parent_task = PARENT_ID;
	req.root_task = PARENT_ID;
	req.deleg_depth = 1;
	req.deleg_path = "lead,worker";
	req.parent_cert_sha256 = h_parent;
	req.not_after = now + 1800;
	child = issue(&req);
	write_pem("child.pem", child);

	req.task_id = LATE_ID;
	req.not_after = now + 7200;
	late = issue(&req);
	write_pem("late.pem", late);

	sha256_of(child, h_child);
	req.agent = "sub";
	req.task_id = GRAND_ID;
	req.parent_task = CHILD_ID;
	req.deleg_depth = 2;
	req.deleg_path = "lead,worker,sub";
	req.parent_cert_sha256 = h_child;
	req.not_after = now + 900;
	grand = issue(&req);
	write_pem("grand.pem", grand);

	f = forge(child, "other", 0, NULL);
	write_pem("forged-path.pem", f);
	X509_free(f);
	f = forge(child, NULL, 2, NULL);
	write_pem("forged-depth.pem", f);
	X509_free(f);
	f = forge(child, NULL, 0, "t-00000000000000000000000000000009");
	write_pem("forged-root.pem", f);
	X509_free(f);

	snprintf(path, sizeof(path), "%s/ids.txt", dir);
	if ((ids = fopen(path, "w")) == NULL ||
	    fprintf(ids, "%s\n%s\n%s\n", PARENT_ID, CHILD_ID, GRAND_ID) < 0 ||
	    fclose(ids) != 0)
		die(path);
	X509_free(parent);
	X509_free(child);
	X509_free(late);
	X509_free(grand);
	X509_free(root);
	EVP_PKEY_free(ca_key);
	return 0;
}
