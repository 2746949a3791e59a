/* placeholder: not written yet */
typedef int stint_placeholder_handle_agent;
