/*
 * libFuzzer target for what stint-pkcs11.so does with stintd's reply: each
 * reply decoder over the same bytes. Whatever decodes must respect the
 * protocol's bounds and encode again to something that decodes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_list(const struct stint_list_rep *rep)
{
	struct stint_reply_head head;
	struct stint_list_rep again;
	uint8_t *out;
	size_t len;

	if (rep->n_tasks > STINT_LIST_PAGE)
		abort();
	for (size_t i = 0; i < rep->n_tasks; i++) {
		const struct stint_task_key *t = &rep->tasks[i];

		if (strlen(t->id) == 0 || strlen(t->id) > STINT_TASK_ID_MAX ||
		    t->n_mechs > STINT_MECHS_MAX || t->spki.len == 0)
			abort();
	}
	if (stint_enc_list_rep(rep, &out, &len) != 0 ||
	    stint_dec_list_rep(out, len, &head, &again) != 0 ||
	    again.n_tasks != rep->n_tasks || again.more != rep->more)
		abort();
	stint_list_rep_clear(&again);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stint_reply_head head;
	struct stint_hello_rep hello;
	struct stint_list_rep list;
	struct stint_bytes sig;

	if (size > STINT_FRAME_MAX)
		return 0;
	if (stint_dec_hello_rep(data, size, &head, &hello) == 0 &&
	    head.status == STINT_OK && strlen(hello.agent) > STINT_NAME_MAX)
		abort();
	if (stint_dec_list_rep(data, size, &head, &list) == 0) {
		if (head.status == STINT_OK)
			check_list(&list);
		stint_list_rep_clear(&list);
	} else if (list.tasks != NULL) {
		abort(); /* freed on failure */
	}
	if (stint_dec_sign_rep(data, size, &head, &sig) == 0) {
		if (head.status == STINT_OK && sig.len == 0)
			abort();
		stint_bytes_clear(&sig);
	}
	return 0;
}
