/* Start-up checks of the paths stintd trusts, in the manner of sshd's
 * secure_path (see paths.c). */
#ifndef STINT_ATTEST_PATHS_H
#define STINT_ATTEST_PATHS_H

#include <stddef.h>
#include <sys/types.h>

#include "attest/config.h"

/* Checks one path and every directory above it: each must be owned by uid
 * or root and not group- or world-writable, except that a root-owned
 * directory with the sticky bit (/tmp) may be writable by others when it is
 * a parent, not the path itself. A missing path is skipped when missing_ok
 * (its parent is still checked). -1 with err naming the path and the fix. */
int stint_path_check(const char *path, const char *what, uid_t uid,
		     int missing_ok, char *err, size_t errlen);

/* The paths stintd trusts: state_dir, the audit log and its directory, the
 * PIN file (PKCS#11) and SoftHSM2's token directory (directories.tokendir
 * in $SOFTHSM2_CONF or /etc/softhsm/softhsm2.conf, when the module is
 * SoftHSM's and that file can be read). */
int stint_paths_check(const struct stint_config *cfg, uid_t uid, char *err,
		      size_t errlen);

#endif
