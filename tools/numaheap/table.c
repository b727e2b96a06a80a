/*
 * table.c — the table printer (table.h).
 */
#define _GNU_SOURCE 1
#include "table.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

void table_init(struct table *t, int ncols)
{
	memset(t, 0, sizeof *t);
	t->ncols = ncols < TABLE_MAX_COLS ? ncols : TABLE_MAX_COLS;
}

int table_row(struct table *t)
{
	t->cells = xrealloc(t->cells, sizeof(char *) * (size_t)(t->nrows + 1) * (size_t)t->ncols);
	for (int c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = NULL;
	return t->nrows++;
}

int table_header(struct table *t, ...)
{
	va_list ap;
	int r = table_row(t);
	va_start(ap, t);
	const char *title;
	for (int c = 0; (title = va_arg(ap, const char *)); c++)
		table_set(t, r, c, "%s", title);
	va_end(ap);
	return r;
}

void table_set(struct table *t, int row, int col, const char *fmt, ...)
{
	if (col >= t->ncols)
		return;
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(t->cells[row * t->ncols + col]);
	t->cells[row * t->ncols + col] = s;
}

void table_print(struct table *t, FILE *f, const char *indent)
{
	int width[TABLE_MAX_COLS] = {0};
	for (int r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			int w = s ? (int)strlen(s) : 0;
			if (w > width[c])
				width[c] = w;
		}
	for (int r = 0; r < t->nrows; r++) {
		fputs(indent, f);
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			if (!s)
				s = "";
			bool last = c == t->ncols - 1;
			if (t->left[c])
				fprintf(f, "%-*s", last ? 0 : width[c], s);
			else
				fprintf(f, "%*s", width[c], s);
			if (!last)
				fputs("  ", f);
		}
		fputc('\n', f);
	}
}

void table_free(struct table *t)
{
	for (int i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}
