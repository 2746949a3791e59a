/* The operators table (operator.h, issue 12 §5). */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "attest/operator.h"
#include "attest/store_int.h"
#include "common/log.h"

#define AGENTS_TEXT_MAX (STINT_OPERATOR_AGENTS_MAX * (STINT_NAME_MAX + 1))

static int
agents_format(const stint_operator *o, char *buf, size_t cap)
{
	size_t i, off = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < o->n_agents; i++) {
		n = snprintf(buf + off, cap - off, "%s%s", i ? "," : "",
			     o->agents[i]);
		if (n < 0 || (size_t)n >= cap - off)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static int
agents_parse(const char *text, stint_operator *o)
{
	const char *p = text, *comma;
	size_t len;

	o->n_agents = 0;
	while (p != NULL && *p != '\0') {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (o->n_agents == STINT_OPERATOR_AGENTS_MAX || len == 0 ||
		    len > STINT_NAME_MAX)
			return -1;
		memcpy(o->agents[o->n_agents], p, len);
		o->agents[o->n_agents++][len] = '\0';
		p = comma ? comma + 1 : NULL;
	}
	return 0;
}

static int
read_operator(sqlite3_stmt *st, stint_operator *o)
{
	memset(o, 0, sizeof(*o));
	if (store_copy_text(st, 0, o->name, sizeof(o->name)) != 0)
		return -1;
	o->uid = (uint32_t)sqlite3_column_int64(st, 1);
	if (agents_parse((const char *)sqlite3_column_text(st, 2), o) != 0)
		return -1;
	o->max_ttl = (uint64_t)sqlite3_column_int64(st, 3);
	o->created = (uint64_t)sqlite3_column_int64(st, 4);
	if (store_copy_text(st, 5, o->source, sizeof(o->source)) != 0)
		return -1;
	return 0;
}

/* One row by st (bound); lock held. */
static int
operator_find(struct stint_store *s, sqlite3_stmt *st, stint_operator *o)
{
	int rc = sqlite3_step(st), r;

	if (rc == SQLITE_ROW)
		r = read_operator(st, o) == 0 ? STINT_STORE_OK
					      : STINT_STORE_ERROR;
	else if (rc == SQLITE_DONE)
		r = STINT_STORE_NOT_FOUND;
	else {
		store_db_log(s, "operator lookup");
		r = STINT_STORE_ERROR;
	}
	store_stmt_done(st);
	return r;
}

static int
operator_add_locked(struct stint_store *s, const stint_operator *o, char *err,
		    size_t errlen)
{
	char agents[AGENTS_TEXT_MAX];
	stint_operator other;
	sqlite3_stmt *st;
	int r;

	if (agents_format(o, agents, sizeof(agents)) != 0 ||
	    o->max_ttl > INT64_MAX) {
		snprintf(err, errlen, "invalid operator record");
		return STINT_STORE_ERROR;
	}
	st = store_stmt(s, S_OPERATOR_BY_NAME);
	sqlite3_bind_text(st, 1, o->name, -1, SQLITE_STATIC);
	if ((r = operator_find(s, st, &other)) == STINT_STORE_OK) {
		snprintf(err, errlen, "operator '%s' already exists", o->name);
		return STINT_STORE_EXISTS;
	}
	if (r != STINT_STORE_NOT_FOUND)
		goto dberr;
	st = store_stmt(s, S_OPERATOR_BY_UID);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)o->uid);
	if ((r = operator_find(s, st, &other)) == STINT_STORE_OK) {
		snprintf(err, errlen,
			 "uid %" PRIu32 " is already operator '%s': remove it "
			 "first (one operator per uid)",
			 o->uid, other.name);
		return STINT_STORE_EXISTS;
	}
	if (r != STINT_STORE_NOT_FOUND)
		goto dberr;
	st = store_stmt(s, S_OPERATOR_INSERT);
	sqlite3_bind_text(st, 1, o->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)o->uid);
	sqlite3_bind_text(st, 3, agents, -1, SQLITE_STATIC);
	store_bind_u64(st, 4, o->max_ttl);
	store_bind_u64(st, 5, o->created);
	sqlite3_bind_text(st, 6, o->source, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	store_stmt_done(st);
	if (r != SQLITE_DONE)
		goto dberr;
	return STINT_STORE_OK;
dberr:
	store_db_err(s, "cannot add operator", err, errlen);
	return STINT_STORE_ERROR;
}

int
stint_store_operator_add(struct stint_store *s, const stint_operator *o,
			 char *err, size_t errlen)
{
	int r;

	pthread_mutex_lock(&s->lock);
	if (store_tx_begin(s) != 0) {
		store_db_err(s, "cannot add operator", err, errlen);
		r = STINT_STORE_ERROR;
		goto out;
	}
	r = operator_add_locked(s, o, err, errlen);
	if (r == STINT_STORE_OK && store_tx_commit(s) != 0) {
		snprintf(err, errlen, "%s: cannot commit operator '%s'",
			 s->path, o->name);
		r = STINT_STORE_ERROR;
	}
	if (r != STINT_STORE_OK)
		store_tx_rollback(s);
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_operator_by_uid(struct stint_store *s, uid_t uid, stint_operator *o)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, S_OPERATOR_BY_UID);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)uid);
	r = operator_find(s, st, o);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int
operator_row(sqlite3_stmt *st, void *row)
{
	return read_operator(st, row);
}

int
stint_store_operator_list(struct stint_store *s, stint_operator **out,
			  size_t *n)
{
	sqlite3_stmt *st;
	void *list;
	int r;

	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, S_OPERATOR_LIST);
	r = store_rows(s, st, sizeof(**out), operator_row, "operator list",
		       &list, n);
	*out = list;
	store_stmt_done(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_operator_remove(struct stint_store *s, const char *name,
			    stint_operator *removed)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, S_OPERATOR_BY_NAME);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	r = operator_find(s, st, removed);
	if (r == STINT_STORE_OK) {
		st = store_stmt(s, S_OPERATOR_DELETE);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			store_db_log(s, "operator remove");
			r = STINT_STORE_ERROR;
		}
		store_stmt_done(st);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* prov: an operators.d file changed operator o->name (all but name and
 * created). NOT_FOUND, or EXISTS when another operator has the uid. */
int
stint_store_operator_update(struct stint_store *s, const stint_operator *o,
			    char *err, size_t errlen)
{
	char agents[AGENTS_TEXT_MAX];
	sqlite3_stmt *st;
	int rc, r = STINT_STORE_OK;

	if (agents_format(o, agents, sizeof(agents)) != 0 ||
	    o->max_ttl > INT64_MAX) {
		snprintf(err, errlen, "invalid operator record");
		return STINT_STORE_ERROR;
	}
	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, S_OPERATOR_UPDATE);
	sqlite3_bind_text(st, 1, o->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)o->uid);
	sqlite3_bind_text(st, 3, agents, -1, SQLITE_STATIC);
	store_bind_u64(st, 4, o->max_ttl);
	sqlite3_bind_text(st, 6, o->source, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		snprintf(err, errlen,
			 "uid %" PRIu32 " is already another operator's (one "
			 "operator per uid)",
			 o->uid);
		r = STINT_STORE_EXISTS;
	} else if (rc != SQLITE_DONE) {
		store_db_err(s, "cannot update operator", err, errlen);
		r = STINT_STORE_ERROR;
	} else if (sqlite3_changes(s->db) == 0) {
		snprintf(err, errlen, "no operator '%s'", o->name);
		r = STINT_STORE_NOT_FOUND;
	}
	store_stmt_done(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}
