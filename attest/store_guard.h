/*
 * Start-up guards around state.db (store_guard.c) and the retention of
 * ended tasks (retention.c).
 */
#ifndef STINT_ATTEST_STORE_GUARD_H
#define STINT_ATTEST_STORE_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "attest/backend.h"
#include "attest/config.h"

struct stintd;

/*
 * Called before state.db is opened (and created). A state.db that exists
 * and is not empty is opened as it is (with init: refused, a store is
 * never replaced). A missing or empty one is created only when nothing
 * shows that this stintd has run before (no audit record, no ca.pem, no
 * key the backend marked as a task key, no TPM key blob), or when init is
 * set; otherwise -1 with err naming the file and what to do. *created says
 * whether the store will be new: the start-up sweep then destroys nothing.
 */
int stint_store_guard(const struct stint_config *cfg,
		      struct stint_backend *backend, const char *db_path,
		      bool init, bool *created, char *err, size_t errlen);

/* Retention (cfg.retention seconds; 0: off): prunes ended tasks and their
 * evidence files now, then from a thread every min(1h, retention / 2)
 * (at least every second). */
int stint_retention_start(struct stintd *d);
void stint_retention_stop(void);
/* One pass; *n tasks pruned. */
int stint_retention_run(struct stintd *d, size_t *n);

#endif
