/* placeholder: not written yet */
typedef int stint_placeholder_proto_agent;
