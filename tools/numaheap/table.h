/*
 * table.h — a table printer: cells are strings, columns sized to fit.
 *
 *	struct table t;
 *	table_init(&t, 2);
 *	table_header(&t, "name", "value", NULL);   row 0
 *	int r = table_row(&t);
 *	table_set(&t, r, 1, "%d", 42);
 *	table_print(&t, stdout, "  ");
 *	table_free(&t);
 *
 * Columns are right-aligned unless left[col] is set; a left-aligned last
 * column is not padded.
 */
#ifndef NH_TOOL_TABLE_H
#define NH_TOOL_TABLE_H

#include <stdbool.h>
#include <stdio.h>

#define TABLE_MAX_COLS 32

struct table {
	int ncols;
	int nrows;
	char **cells; /* nrows * ncols; row 0 is the header */
	bool left[TABLE_MAX_COLS];
};

void table_init(struct table *t, int ncols);
/* Append an empty row; returns its index. */
int table_row(struct table *t);
/* Append a row of the given titles (up to a NULL); returns its index. */
int table_header(struct table *t, ...) __attribute__((sentinel));
void table_set(struct table *t, int row, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void table_print(struct table *t, FILE *f, const char *indent);
void table_free(struct table *t);

#endif
