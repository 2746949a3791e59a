/* A stored task as the task map of a reply (task_info.h). */

#include <stdio.h>
#include <string.h>

#include "attest/task.h"
#include "attest/task_info.h"

static void
bind_info(const struct stint_task_bind *b, struct stint_task_info *out)
{
	if (b->kind == STINT_BIND_PID) {
		out->bind_pid = (uint64_t)b->pid;
		out->bind_start = b->start_time;
	} else if (b->kind == STINT_BIND_CGROUP) {
		snprintf(out->bind_cgroup, sizeof(out->bind_cgroup), "%s",
			 b->cgroup);
		out->bind_owned = b->owned;
	}
}

/* deleg: a root task is its own root, its path its agent. */
static void
tree_info(const struct stint_task *t, struct stint_task_info *out)
{
	snprintf(out->parent, sizeof(out->parent), "%s", t->parent_id);
	snprintf(out->root, sizeof(out->root), "%s",
		 t->root_id[0] ? t->root_id : t->id);
	out->depth = t->depth;
	snprintf(out->dpath, sizeof(out->dpath), "%s",
		 t->path[0] ? t->path : t->agent);
	out->reserved = t->reserved;
}

void
stintd_task_info(const struct stint_task *t, enum stintd_task_view view,
		 struct stint_task_info *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", t->id);
	snprintf(out->agent, sizeof(out->agent), "%s", t->agent);
	out->key_type = t->key_type;
	snprintf(out->state, sizeof(out->state), "%s",
		 stint_task_state_str(t->state));
	out->created = (uint64_t)t->created;
	out->not_after = (uint64_t)t->not_after;
	out->has_ended = t->ended != 0;
	out->ended = (uint64_t)t->ended;
	memcpy(out->mechs, t->mechs, t->n_mechs * sizeof(t->mechs[0]));
	out->n_mechs = t->n_mechs;
	stint_task_uri(t, out->uri, sizeof(out->uri));
	out->spki = t->pub.spki.ptr;
	out->spki_len = t->pub.spki.len;
	if (view != STINTD_TASK_LIST) {
		out->cert = t->cert.ptr;
		out->cert_len = t->cert.len;
	}
	if (view == STINTD_TASK_PUBLIC)
		return;
	snprintf(out->reason, sizeof(out->reason), "%s", t->reason);
	out->has_sigs = true;
	out->max_sigs = t->max_sigs;
	out->used_sigs = t->used_sigs;
	snprintf(out->intent, sizeof(out->intent), "%s", t->intent);
	bind_info(&t->bind, out);
	snprintf(out->audiences, sizeof(out->audiences), "%s", t->audiences);
	tree_info(t, out);
}
