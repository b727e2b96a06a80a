/*
 * json.h — a small JSON reader (RFC 8259) for the statistics dumps; numbers
 * are also kept exactly when they are non-negative integers.
 */
#ifndef NH_TOOL_JSON_H
#define NH_TOOL_JSON_H

#include <stdbool.h>
#include <stddef.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	bool b;
	double num;
	bool exact; /* u holds the number exactly */
	unsigned long long u;
	char *s;
	size_t n; /* array items / object members */
	char **keys;
	struct jv **items;
};

/*
 * Parse [s, end) as one JSON value followed by whitespace only. NULL on
 * error, with *err the reason and *err_off where, from s.
 */
struct jv *jparse(const char *s, const char *end, const char **err, size_t *err_off);
void jfree(struct jv *v);

/* The member key of object o; NULL when o is not an object or has none. */
const struct jv *jget(const struct jv *o, const char *key);
/* A number as an unsigned integer; 0 for anything else. */
unsigned long long jnum(const struct jv *v);

#endif
