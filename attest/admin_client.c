/* placeholder: not written yet */
typedef int stint_placeholder_admin_client;
