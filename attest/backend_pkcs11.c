/* placeholder: not written yet */
typedef int stint_placeholder_backend_pkcs11;
