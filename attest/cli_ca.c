/*
 * stint ca cert|csr|install|attestation-key, stint attest verify (offline)
 * and stint verify-peer (offline when given --ca).
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/cli.h"
#include "attest/evidence.h"
#include "common/fileio.h"
#include "common/hex.h"
#include "stint/verify.h"
#include "stint/wire.h"

#define FILE_MAX (1024 * 1024)

void
stint_help_ca(FILE *f)
{
	fprintf(f,
		"usage: stint ca cert\n"
		"       stint ca csr\n"
		"       stint ca install CHAIN.pem\n"
		"       stint ca attestation-key\n"
		"\n"
		"The Stint CA signs each task's certificate with a key held in "
		"the backend.\n"
		"  cert             print the CA chain (the trust bundle "
		"relying parties use)\n"
		"  csr              print a CSR for the CA key, for your own "
		"PKI to sign\n"
		"  install FILE     install the signed chain (CA certificate "
		"first, then\n"
		"                   its issuers); later task certificates "
		"chain to it\n"
		"  attestation-key  print the host attestation key (PEM) that "
		"signs evidence\n");
}

void
stint_help_attest(FILE *f)
{
	fprintf(f,
		"usage: stint attest verify EVIDENCE --attestation-key PEM "
		"[--nonce HEX]\n"
		"                           [--task ID] [--json]\n"
		"\n"
		"Verify key attestation evidence offline (from 'stint task "
		"evidence'),\n"
		"of either kind: a PKCS#11 statement or a TPM2_Certify "
		"(the TPM backend;\n"
		"then the key is <state_dir>/tpm/ak.pub.pem, as 'stint ca "
		"attestation-key'\n"
		"prints).\n"
		"Checks the signature by the attestation key, the task id and "
		"nonce when\n"
		"given, the key type and the key's attributes; names the "
		"check that failed.\n");
}

void
stint_help_verify_peer(FILE *f)
{
	fprintf(f, "usage: stint verify-peer CERT.pem [--agent NAME] "
		   "[--trust-domain TD]\n"
		   "                         [--ca BUNDLE.pem] "
		   "[--extension-oid OID] [--audience NAME] "
		   "[--json]\n"
		   "                         [--parent-cert PARENT.pem]\n"
		   "\n"
		   "Check a presented certificate as a relying party would: "
		   "chain to the\n"
		   "Stint CA (--ca, else stintd's 'ca cert'), valid now, one "
		   "SPIFFE ID\n"
		   "spiffe://TD/agent/NAME, a leaf for TLS clients, and the "
		   "task extension.\n"
		   "The task extension is found under Stint's default OID, the "
		   "legacy 2.25 one,\n"
		   "or --extension-oid (a [ca] extension_oid of your own).\n"
		   "--audience NAME: also require that the task names NAME "
		   "(this relying\n"
		   "party) among its audiences; a task that names none is "
		   "refused.\n"
		   "A delegated task's leaf also names its parent, root task, "
		   "depth and the\n"
		   "path of agents; they are checked against each other and "
		   "the SPIFFE ID.\n"
		   "--parent-cert FILE: also check that FILE is the parent "
		   "task's certificate\n"
		   "(its SHA-256, task id, agent, audiences, and a notAfter "
		   "not before\nthe leaf's).\n"
		   "Prints the agent and the task.\n");
}

/* A file argument ("-": standard input), at most FILE_MAX bytes. */
static int
read_arg(const char *path, uint8_t **buf, size_t *len)
{
	char err[256], *p;
	int r = stint_file_read_arg(path, FILE_MAX, &p, len, err, sizeof(err));

	*buf = (uint8_t *)p;
	return r;
}

/* --- stint ca ---------------------------------------------------------- */

static int
ca_fetch(const struct stint_cli *cli, uint64_t op, const char *what,
	 struct stint_msg **rep)
{
	struct stint_msg *req = stint_cli_request(op);

	if (req == NULL)
		return STINT_EXIT_FAIL;
	return stint_cli_call(cli, what, req, rep);
}

/* The CA chain, which any user may fetch (through agent.sock when
 * admin.sock is not this user's). */
static int
ca_fetch_public(const struct stint_cli *cli, const char *what,
		struct stint_msg **rep)
{
	struct stint_msg *req = stint_cli_request(STINT_OP_CA_CERT);

	if (req == NULL)
		return STINT_EXIT_FAIL;
	return stint_cli_call_public(cli, what, req, rep);
}

static int
print_pem(const uint8_t *p, size_t n, const char *what)
{
	if (p == NULL || n == 0) {
		stint_cli_err("%s: stintd's reply lacks it", what);
		return STINT_EXIT_FAIL;
	}
	if (fwrite(p, 1, n, stdout) != n || fflush(stdout) != 0) {
		stint_cli_err("%s: cannot write the output", what);
		return STINT_EXIT_FAIL;
	}
	return STINT_EXIT_OK;
}

static int
ca_install(const struct stint_cli *cli, const char *path)
{
	struct stint_msg *req, *rep = NULL;
	struct stint_pem_msg in;
	uint8_t *buf;
	size_t len;

	if (read_arg(path, &buf, &len) != 0 || len == 0) {
		stint_cli_err("ca install: cannot read '%s'", path);
		free(buf);
		return STINT_EXIT_FAIL;
	}
	in = (struct stint_pem_msg){.pem = buf, .len = len};
	if ((req = stint_cli_request(STINT_OP_CA_INSTALL)) == NULL ||
	    stint_put_pem_msg(req, &in) != 0) {
		stint_msg_free(req);
		free(buf);
		stint_cli_err("ca install: cannot build the request");
		return STINT_EXIT_FAIL;
	}
	free(buf);
	if (stint_cli_call(cli, "ca install", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	stint_msg_free(rep);
	printf("CA chain installed; new task certificates chain to it\n");
	return STINT_EXIT_OK;
}

int
stint_cmd_ca(const struct stint_cli *cli, int argc, char **argv)
{
	struct stint_msg *rep = NULL;
	struct stint_ca_cert_rep cr;
	struct stint_pem_msg csr;
	const uint8_t *spki;
	EVP_PKEY *k;
	int ret;

	if (strcmp(argv[0], "install") == 0) {
		if (argc != 2)
			return stint_cli_usage("ca", "'ca install' takes one "
						     "PEM file");
		return ca_install(cli, argv[1]);
	}
	if (argc != 1)
		return stint_cli_usage("ca", "'ca %s' takes no arguments",
				       argv[0]);
	if (strcmp(argv[0], "cert") == 0) {
		if (ca_fetch_public(cli, "ca cert", &rep) != 0)
			return STINT_EXIT_FAIL;
		if (stint_get_ca_cert_rep(rep, &cr) != 0)
			memset(&cr, 0, sizeof(cr));
		ret = print_pem(cr.pem, cr.pem_len, "ca cert");
	} else if (strcmp(argv[0], "csr") == 0) {
		if (ca_fetch(cli, STINT_OP_CA_CSR, "ca csr", &rep) != 0)
			return STINT_EXIT_FAIL;
		if (stint_get_pem_msg(rep, &csr) != 0)
			memset(&csr, 0, sizeof(csr));
		ret = print_pem(csr.pem, csr.len, "ca csr");
	} else if (strcmp(argv[0], "attestation-key") == 0) {
		if (ca_fetch(cli, STINT_OP_CA_CERT, "ca attestation-key",
			     &rep) != 0)
			return STINT_EXIT_FAIL;
		ret = STINT_EXIT_FAIL;
		if (stint_get_ca_cert_rep(rep, &cr) != 0)
			memset(&cr, 0, sizeof(cr));
		spki = cr.ak_spki;
		if (spki != NULL &&
		    (k = d2i_PUBKEY(NULL, &spki, (long)cr.ak_len)) != NULL) {
			if (PEM_write_PUBKEY(stdout, k) == 1)
				ret = STINT_EXIT_OK;
			EVP_PKEY_free(k);
		}
		if (ret != STINT_EXIT_OK)
			stint_cli_err("ca attestation-key: no usable key in "
				      "stintd's reply");
	} else {
		return stint_cli_usage("ca", "no such command 'ca %s'",
				       argv[0]);
	}
	stint_msg_free(rep);
	return ret;
}

/* --- stint attest verify ---------------------------------------------- */

static EVP_PKEY *
read_pubkey(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (f == NULL)
		return NULL;
	k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

/* TPM2_Certify evidence: what the TPM's attestation key proves. */
static void
print_tpm_claims(const struct stint_evidence_claims *c, const char *nonce,
		 bool json)
{
	char when[40];

	if (json) {
		(void)stint_cli_print_json(json_pack(
			"{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}",
			"result", "ok", "kind", c->kind, "task", c->task,
			"nonce", nonce, "key_type",
			stint_key_type_str(c->key_type), "tpm_deadline_ms",
			(json_int_t)c->tpm_deadline, "tpm_clock_ms",
			(json_int_t)c->tpm_clock, "kill_switch_counter",
			(json_int_t)c->tpm_counter, "kill_switch_index",
			(json_int_t)c->nv_index, "not_after",
			(json_int_t)c->not_after));
		return;
	}
	stint_cli_time((uint64_t)c->not_after, when, sizeof(when));
	printf("evidence OK: key of task %s (%s) certified by the TPM "
	       "attestation key\n"
	       "nonce %s\n"
	       "attributes: fixedTPM, fixedParent, sensitiveDataOrigin, "
	       "sign; no userWithAuth\n"
	       "policy: TPM clock < %llu ms (certified at %llu ms; about %s) "
	       "AND\n"
	       "        kill-switch counter 0x%08x == %llu\n",
	       c->task, stint_key_type_str(c->key_type), nonce,
	       (unsigned long long)c->tpm_deadline,
	       (unsigned long long)c->tpm_clock, when, (unsigned)c->nv_index,
	       (unsigned long long)c->tpm_counter);
}

static void
print_claims(const struct stint_evidence_claims *c, bool json)
{
	char nonce[2 * STINT_NONCE_LEN + 1], when[40];
	json_t *o;

	stint_hex_encode(c->nonce, sizeof(c->nonce), nonce);
	if (strcmp(c->kind, "tpm") == 0) {
		print_tpm_claims(c, nonce, json);
		return;
	}
	if (json) {
		o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:b, s:b, s:b, s:b}",
			      "result", "ok", "task", c->task, "nonce", nonce,
			      "time", (json_int_t)c->time, "key_type",
			      stint_key_type_str(c->key_type), "local",
			      c->local, "never_extractable",
			      c->never_extractable, "sensitive", c->sensitive,
			      "extractable", c->extractable);
		(void)stint_cli_print_json(o);
		return;
	}
	stint_cli_time(c->time, when, sizeof(when));
	printf("evidence OK: key of task %s (%s) attested by the host "
	       "attestation key\n"
	       "nonce %s\ntime %s\nattributes: local, never extractable, "
	       "sensitive, not extractable\n",
	       c->task, stint_key_type_str(c->key_type), nonce, when);
}

static int
attest_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"attestation-key", required_argument, NULL, 'k'},
		{"nonce", required_argument, NULL, 'n'},
		{"task", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stint_evidence_expect want;
	struct stint_evidence_claims claims;
	const char *key_path = NULL, *nonce_hex = NULL;
	uint8_t nonce[STINT_NONCE_LEN], *buf = NULL, *doc = NULL;
	size_t len, doc_len;
	EVP_PKEY *ak = NULL;
	bool json = false;
	char err[300];
	int c, check, ret = STINT_EXIT_FAIL;

	memset(&want, 0, sizeof(want));
	optind = 0;
	while ((c = getopt_long(argc, argv, ":k:n:t:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key_path = optarg;
			break;
		case 'n':
			nonce_hex = optarg;
			break;
		case 't':
			want.task = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			stint_help_attest(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("attest", c, argv);
		}
	}
	if (optind != argc - 1)
		return stint_cli_usage("attest",
				       "'attest verify' takes one evidence "
				       "file");
	if (key_path == NULL)
		return stint_cli_usage("attest",
				       "--attestation-key PEM is required "
				       "(from 'stint ca attestation-key')");
	if (nonce_hex != NULL) {
		if (stint_hex_decode(nonce_hex, nonce, sizeof(nonce)) != 0)
			return stint_cli_usage("attest",
					       "--nonce takes %d hex digits",
					       2 * STINT_NONCE_LEN);
		want.nonce = nonce;
	}
	if ((ak = read_pubkey(key_path)) == NULL) {
		stint_cli_err("attest verify: cannot read a PEM public key "
			      "from '%s'",
			      key_path);
		return STINT_EXIT_FAIL;
	}
	if (read_arg(argv[optind], &buf, &len) != 0 ||
	    stint_evidence_read(buf, len, &doc, &doc_len) != 0) {
		stint_cli_err("attest verify: check well-formedness failed: "
			      "cannot read evidence from '%s'",
			      argv[optind]);
		goto out;
	}
	check = stint_evidence_verify(doc, doc_len, ak, &want, &claims, err,
				      sizeof(err));
	if (check != STINT_EV_OK) {
		if (json)
			(void)stint_cli_print_json(json_pack(
				"{s:s, s:s, s:s}", "result", "fail", "check",
				stint_evidence_check_str(check), "error", err));
		stint_cli_err("attest verify: check %s failed: %s",
			      stint_evidence_check_str(check), err);
		goto out;
	}
	print_claims(&claims, json);
	stint_evidence_claims_free(&claims);
	ret = STINT_EXIT_OK;
out:
	EVP_PKEY_free(ak);
	free(buf);
	free(doc);
	return ret;
}

int
stint_cmd_attest(const struct stint_cli *cli, int argc, char **argv)
{
	(void)cli;
	if (strcmp(argv[0], "verify") == 0)
		return attest_verify(argc, argv);
	return stint_cli_usage("attest", "no such command 'attest %s'",
			       argv[0]);
}

/* --- stint verify-peer ------------------------------------------------- */

static X509_STORE *
store_from_pem(const uint8_t *pem, size_t len)
{
	X509_STORE *st = X509_STORE_new();
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x;
	int n = 0;

	if (st == NULL || bio == NULL)
		goto fail;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(st, x) != 1) {
			X509_free(x);
			goto fail;
		}
		X509_free(x);
		n++;
	}
	if (n == 0)
		goto fail;
	BIO_free(bio);
	return st;
fail:
	BIO_free(bio);
	X509_STORE_free(st);
	return NULL;
}

/* The binding block (issue 12 §6) as JSON: null when the certificate has
 * none; else kind, and cgroup, unit, exe_sha256 where present. */
static json_t *
binding_json(const struct stint_peer_identity *id)
{
	char hex[65];
	json_t *o;

	if (id->bind_kind[0] == '\0')
		return json_null();
	o = json_pack("{s:s}", "kind", id->bind_kind);
	if (o == NULL)
		return NULL;
	if (id->bind_cgroup[0] != '\0')
		json_object_set_new(o, "cgroup", json_string(id->bind_cgroup));
	if (id->bind_unit[0] != '\0')
		json_object_set_new(o, "unit", json_string(id->bind_unit));
	if (id->has_exe_sha256) {
		stint_hex_encode(id->exe_sha256, 32, hex);
		json_object_set_new(o, "exe_sha256", json_string(hex));
	}
	return o;
}

/* The binding block as text lines; nothing when the certificate has none
 * (issued by an earlier version). */
static void
binding_print(const struct stint_peer_identity *id)
{
	char hex[65];

	if (id->bind_kind[0] == '\0')
		return;
	printf("binding %s\n", id->bind_kind);
	if (id->bind_cgroup[0] != '\0')
		printf("bound_cgroup %s\n", id->bind_cgroup);
	if (id->bind_unit[0] != '\0')
		printf("bound_unit %s\n", id->bind_unit);
	if (id->has_exe_sha256) {
		stint_hex_encode(id->exe_sha256, 32, hex);
		printf("exe_sha256 %s\n", hex);
	}
}

/* The task's audiences as a JSON array ([] when it names none). */
static json_t *
audiences_json(const char *list)
{
	json_t *a = json_array();
	const char *p = list, *comma;
	size_t len;

	if (a == NULL)
		return NULL;
	for (; *p != '\0'; p += len + (comma != NULL)) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		json_array_append_new(a, json_stringn(p, len));
	}
	return a;
}

/* --- deleg: the delegation chain ------------------------------------ */

/* null for a top-level task; else the chain, and whether --parent-cert
 * was checked. */
static json_t *
delegation_json(const struct stint_peer_identity *id, bool parent_checked)
{
	char hex[65];
	json_t *path;
	const char *p = id->delegation_path, *comma;
	size_t len;

	if (!id->delegated)
		return json_null();
	if ((path = json_array()) == NULL)
		return NULL;
	for (; *p != '\0'; p += len + (comma != NULL)) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		json_array_append_new(path, json_stringn(p, len));
	}
	stint_hex_encode(id->parent_cert_sha256, 32, hex);
	return json_pack("{s:s, s:s, s:i, s:o, s:s, s:b}", "parent_task",
			 id->parent_task, "root_task", id->root_task, "depth",
			 id->depth, "path", path, "parent_cert_sha256", hex,
			 "parent_cert_checked", parent_checked);
}

static void
delegation_print(const struct stint_peer_identity *id, bool parent_checked)
{
	char hex[65];

	if (!id->delegated)
		return;
	stint_hex_encode(id->parent_cert_sha256, 32, hex);
	printf("parent_task %s\nroot_task %s\ndepth %d\n"
	       "delegation_path %s\nparent_cert_sha256 %s\n",
	       id->parent_task, id->root_task, id->depth, id->delegation_path,
	       hex);
	if (parent_checked)
		printf("parent_cert ok\n");
}

/* --parent-cert: the first certificate in the file must be the parent's.
 * -1 (said on stderr) when the file holds none. */
static int
parent_check(const struct stint_peer_identity *id, const char *path,
	     const char *oid, char *err, size_t errlen)
{
	X509 *parent = NULL;
	FILE *f = fopen(path, "r");
	int r;

	if (f != NULL) {
		parent = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (parent == NULL) {
		stint_cli_err("verify-peer: no PEM certificate in '%s'", path);
		return -1;
	}
	if (!id->delegated) {
		snprintf(err, errlen,
			 "task %s is a top-level task: it has no parent",
			 id->task);
		X509_free(parent);
		return STINT_VERIFY_ERR_PARENT;
	}
	r = stint_verify_parent(id, parent, oid, err, errlen);
	X509_free(parent);
	return r;
}

/* --- end deleg ------------------------------------------------------- */

int
stint_cmd_verify_peer(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"agent", required_argument, NULL, 'a'},
		{"trust-domain", required_argument, NULL, 'd'},
		{"ca", required_argument, NULL, 'c'},
		{"extension-oid", required_argument, NULL, 'o'},
		{"audience", required_argument, NULL, 'u'},    /* aud */
		{"parent-cert", required_argument, NULL, 'p'}, /* deleg */
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *agent = NULL, *td = NULL, *ca = NULL, *oid = NULL;
	const char *audience = NULL; /* aud */
	const char *parent = NULL;   /* deleg */
	struct stint_peer_identity id;
	struct stint_msg *rep = NULL;
	STACK_OF(X509) *extra = NULL;
	X509_STORE *store = NULL;
	struct stint_ca_cert_rep cr;
	uint8_t *buf = NULL;
	char err[300], when[40], hex[65], ev_hex[65];
	size_t len;
	X509 *leaf = NULL, *x;
	FILE *f;
	bool json = false;
	int c, r, ret = STINT_EXIT_FAIL;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":a:d:c:o:u:p:jh", opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'u':
			audience = optarg;
			break;
		case 'p':
			parent = optarg;
			break;
		case 'a':
			agent = optarg;
			break;
		case 'o':
			oid = optarg;
			break;
		case 'd':
			td = optarg;
			break;
		case 'c':
			ca = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			stint_help_verify_peer(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("verify-peer", c, argv);
		}
	}
	if (optind != argc - 1)
		return stint_cli_usage("verify-peer",
				       "'verify-peer' takes one certificate "
				       "file");
	if (ca != NULL) {
		if (read_arg(ca, &buf, &len) != 0 ||
		    (store = store_from_pem(buf, len)) == NULL) {
			stint_cli_err("verify-peer: no PEM certificates in "
				      "'%s'",
				      ca);
			goto out;
		}
	} else {
		if (ca_fetch_public(cli, "verify-peer", &rep) != 0)
			goto out;
		if (stint_get_ca_cert_rep(rep, &cr) != 0 ||
		    (store = store_from_pem(cr.pem, cr.pem_len)) == NULL) {
			stint_cli_err("verify-peer: stintd sent no CA chain");
			goto out;
		}
	}
	/* The leaf first; any further certificates are intermediates. */
	if ((f = fopen(argv[optind], "r")) == NULL ||
	    (leaf = PEM_read_X509(f, NULL, NULL, NULL)) == NULL) {
		if (f != NULL)
			fclose(f);
		stint_cli_err("verify-peer: no PEM certificate in '%s'",
			      argv[optind]);
		goto out;
	}
	if ((extra = sk_X509_new_null()) == NULL) {
		fclose(f);
		goto out;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(extra, x))
			X509_free(x);
	fclose(f);
	r = stint_verify_peer_audience(leaf, extra, store, td, agent, oid,
				       audience, 0, &id, err, sizeof(err));
	if (r == STINT_VERIFY_OK && parent != NULL && /* deleg */
	    (r = parent_check(&id, parent, oid, err, sizeof(err))) < 0)
		goto out;
	if (r != STINT_VERIFY_OK) {
		if (json)
			(void)stint_cli_print_json(json_pack(
				"{s:s, s:s, s:s}", "result", "fail", "check",
				stint_verify_strerror(r), "error", err));
		stint_cli_err("verify-peer: check %s failed: %s",
			      stint_verify_strerror(r), err);
		goto out;
	}
	stint_hex_encode(id.intent_digest, 32, hex);
	stint_hex_encode(id.evidence_digest, 32, ev_hex);
	if (json) {
		ret = stint_cli_print_json(json_pack(
			"{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, "
			"s:s, s:o, s:o, s:o}",
			"result", "ok", "spiffe_id", id.spiffe_id,
			"trust_domain", id.trust_domain, "agent", id.agent,
			"task", id.task, "parent_task", id.parent_task,
			"attestation", id.attestation_kind, "not_after",
			(json_int_t)id.not_after, "serial", id.serial,
			"intent_sha256", hex, "evidence_sha256", ev_hex,
			"binding", binding_json(&id), "audiences",
			audiences_json(id.audiences), "delegation",
			delegation_json(&id, parent != NULL)));
		goto out;
	}
	stint_cli_time((uint64_t)id.not_after, when, sizeof(when));
	printf("OK %s\nagent %s\ntask %s\nnot_after %s\nattestation %s\n",
	       id.spiffe_id, id.agent, id.task, when, id.attestation_kind);
	binding_print(&id);
	if (id.audiences[0] != '\0')
		printf("audiences %s\n", id.audiences);
	delegation_print(&id, parent != NULL);
	ret = STINT_EXIT_OK;
out:
	sk_X509_pop_free(extra, X509_free);
	X509_free(leaf);
	X509_STORE_free(store);
	stint_msg_free(rep);
	free(buf);
	return ret;
}
