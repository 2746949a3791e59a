/*
 * Sessions, login state and object search.
 *
 * Read/write sessions are accepted although the token is write-protected:
 * some applications open every session read/write (pkcs11-tool does for
 * several operations, Java's SunPKCS11 and NSS do by default), and every
 * write is refused anyway with CKR_TOKEN_WRITE_PROTECTED.
 *
 * C_Login(CKU_USER) accepts any PIN and changes only the session state
 * PKCS#11 reports (C_GetSessionInfo: CKS_RO/RW_USER_FUNCTIONS until
 * C_Logout or the last session closes): the token sets no
 * CKF_LOGIN_REQUIRED, so libp11 never asks for a PIN, and the PIN an
 * application may still pass is neither stored nor sent anywhere. What a
 * session may see or sign is the same before and after. The process's OS
 * identity, checked by stintd, is the credential. CKU_SO is refused
 * (login_so).
 */
#include <stdlib.h>
#include <string.h>

#include "module/module.h"

static struct session *g_sessions;
static CK_SESSION_HANDLE g_next_handle = 1;
static bool g_logged_in;

struct session *
session_get(CK_SESSION_HANDLE h)
{
	struct session *s;

	for (s = g_sessions; s != NULL; s = s->next)
		if (s->handle == h)
			return s;
	return NULL;
}

static void
find_clear(struct session *s)
{
	free(s->found);
	s->found = NULL;
	s->n_found = s->next_found = 0;
	s->finding = false;
}

static void
session_free(struct session *s)
{
	find_clear(s);
	if (s->sign != NULL)
		sign_op_abandon(s->sign);
	free(s);
}

void
sessions_reset(void)
{
	struct session *s;

	while ((s = g_sessions) != NULL) {
		g_sessions = s->next;
		session_free(s);
	}
	g_logged_in = false;
}

void
sessions_reset_slot(CK_SLOT_ID slot)
{
	struct session **pp = &g_sessions, *s;

	while ((s = *pp) != NULL) {
		if (s->slot != slot) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		session_free(s);
	}
	if (g_sessions == NULL)
		g_logged_in = false;
}

void
sessions_count(CK_ULONG *all, CK_ULONG *rw)
{
	struct session *s;

	*all = *rw = 0;
	for (s = g_sessions; s != NULL; s = s->next) {
		(*all)++;
		if (s->flags & CKF_RW_SESSION)
			(*rw)++;
	}
}

CK_RV
C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
	      CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession)
{
	struct session *s;
	CK_RV rv;

	(void)pApplication;
	(void)Notify;
	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	if (!slot_valid(slotID))
		return TRACE(CKR_SLOT_ID_INVALID);
	if (phSession == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	if (!(flags & CKF_SERIAL_SESSION))
		return TRACE(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	/* Opening a session is when applications look at a token afresh. */
	if ((rv = objects_refresh(slotID)) != CKR_OK)
		return TRACE(rv == CKR_DEVICE_ERROR ? CKR_TOKEN_NOT_PRESENT
						    : rv);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return TRACE(CKR_HOST_MEMORY);
	s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
	s->slot = slotID;
	mod_lock();
	s->handle = g_next_handle++;
	if (g_next_handle == 0)
		g_next_handle = 1;
	s->next = g_sessions;
	g_sessions = s;
	*phSession = s->handle;
	mod_unlock();
	return TRACE(CKR_OK);
}

CK_RV
C_CloseSession(CK_SESSION_HANDLE hSession)
{
	struct session **pp, *s = NULL;
	CK_RV rv;

	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	mod_lock();
	for (pp = &g_sessions; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->handle == hSession) {
			s = *pp;
			*pp = s->next;
			break;
		}
	}
	if (s != NULL) {
		session_free(s);
		/* Closing the last session logs the application out. */
		if (g_sessions == NULL)
			g_logged_in = false;
	}
	mod_unlock();
	return TRACE(s != NULL ? CKR_OK : CKR_SESSION_HANDLE_INVALID);
}

CK_RV
C_CloseAllSessions(CK_SLOT_ID slotID)
{
	CK_RV rv;

	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	if (!slot_valid(slotID))
		return TRACE(CKR_SLOT_ID_INVALID);
	mod_lock();
	sessions_reset_slot(slotID);
	mod_unlock();
	return TRACE(CKR_OK);
}

CK_RV
C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
	struct session *s;
	bool rw;
	CK_RV rv;

	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	if (pInfo == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	mod_lock();
	if ((s = session_get(hSession)) == NULL) {
		mod_unlock();
		return TRACE(CKR_SESSION_HANDLE_INVALID);
	}
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->slotID = s->slot;
	pInfo->flags = s->flags;
	rw = (s->flags & CKF_RW_SESSION) != 0;
	if (g_logged_in)
		pInfo->state =
			rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
	else
		pInfo->state =
			rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
	pInfo->ulDeviceError = 0;
	mod_unlock();
	return TRACE(CKR_OK);
}

/* Any R/O session open: the security officer may not log in then. */
static bool
ro_session_exists(void)
{
	struct session *s;

	for (s = g_sessions; s != NULL; s = s->next)
		if (!(s->flags & CKF_RW_SESSION))
			return true;
	return false;
}

/* CKU_SO, in the order PKCS#11 gives: a R/O session open refuses it
 * (CKR_SESSION_READ_ONLY_EXISTS), a logged-in user too; otherwise the
 * token has no SO PIN at all (nothing of it can be administered from the
 * agent's side), which it reports as permanently locked (CKF_SO_PIN_LOCKED
 * in the token flags). */
static CK_RV
login_so(void)
{
	if (ro_session_exists())
		return CKR_SESSION_READ_ONLY_EXISTS;
	if (g_logged_in)
		return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
	return CKR_PIN_LOCKED;
}

CK_RV
C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
	CK_ULONG ulPinLen)
{
	struct session *s;
	CK_RV rv = CKR_OK;

	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	if (pPin == NULL && ulPinLen > 0)
		return TRACE(CKR_ARGUMENTS_BAD);
	mod_lock();
	if ((s = session_get(hSession)) == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
	} else if (userType == CKU_USER) {
		/* Any PIN: it is neither stored nor sent anywhere. */
		if (g_logged_in)
			rv = CKR_USER_ALREADY_LOGGED_IN;
		g_logged_in = true;
	} else if (userType == CKU_CONTEXT_SPECIFIC) {
		/* No key needs it (CKA_ALWAYS_AUTHENTICATE is false). */
		rv = s->sign != NULL ? CKR_OK : CKR_OPERATION_NOT_INITIALIZED;
	} else if (userType == CKU_SO) {
		rv = login_so();
	} else {
		rv = CKR_USER_TYPE_INVALID;
	}
	mod_unlock();
	return TRACE(rv);
}

CK_RV
C_Logout(CK_SESSION_HANDLE hSession)
{
	CK_RV rv;

	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	mod_lock();
	if (session_get(hSession) == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if (!g_logged_in)
		rv = CKR_USER_NOT_LOGGED_IN;
	else
		g_logged_in = false;
	mod_unlock();
	return TRACE(rv);
}

CK_RV
C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
		    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	CK_RV rv;

	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	if (pTemplate == NULL && ulCount > 0)
		return TRACE(CKR_ARGUMENTS_BAD);
	mod_lock();
	if (session_get(hSession) == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else
		rv = objects_get_attrs(hObject, pTemplate, ulCount);
	mod_unlock();
	return TRACE(rv);
}

CK_RV
C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
		CK_ULONG_PTR pulSize)
{
	CK_RV rv;

	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	if (pulSize == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	mod_lock();
	if (session_get(hSession) == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else
		rv = objects_size(hObject, pulSize);
	mod_unlock();
	return TRACE(rv);
}

/* Checks the session and that no search is running; lock held. */
static CK_RV
find_ready(CK_SESSION_HANDLE h, struct session **sp)
{
	if ((*sp = session_get(h)) == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if ((*sp)->finding)
		return CKR_OPERATION_ACTIVE;
	return CKR_OK;
}

CK_RV
C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
		  CK_ULONG ulCount)
{
	struct session *s;
	CK_SLOT_ID slot = 0;
	CK_RV rv;

	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	if (pTemplate == NULL && ulCount > 0)
		return TRACE(CKR_ARGUMENTS_BAD);
	mod_lock();
	if ((rv = find_ready(hSession, &s)) == CKR_OK)
		slot = s->slot;
	mod_unlock();
	if (rv != CKR_OK)
		return TRACE(rv);
	/* New tasks appear and ended ones vanish at every search. */
	if ((rv = objects_refresh(slot)) != CKR_OK)
		return TRACE(rv);
	mod_lock();
	if ((rv = find_ready(hSession, &s)) == CKR_OK &&
	    (rv = objects_find(s->slot, pTemplate, ulCount, &s->found,
			       &s->n_found)) == CKR_OK) {
		s->next_found = 0;
		s->finding = true;
	}
	mod_unlock();
	return TRACE(rv);
}

CK_RV
C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
	      CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
	struct session *s;
	CK_ULONG n = 0;
	CK_RV rv;

	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	if ((phObject == NULL && ulMaxObjectCount > 0) ||
	    pulObjectCount == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	mod_lock();
	if ((s = session_get(hSession)) == NULL) {
		rv = CKR_SESSION_HANDLE_INVALID;
	} else if (!s->finding) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
	} else {
		while (n < ulMaxObjectCount && s->next_found < s->n_found)
			phObject[n++] = s->found[s->next_found++];
		*pulObjectCount = n;
	}
	mod_unlock();
	return TRACE(rv);
}

CK_RV
C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	struct session *s;
	CK_RV rv;

	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	mod_lock();
	if ((s = session_get(hSession)) == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if (!s->finding)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else
		find_clear(s);
	mod_unlock();
	return TRACE(rv);
}
