/* placeholder: TPM backend being written */
typedef int stint_placeholder_backend_tpm;
