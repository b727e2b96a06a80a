/*
 * render.h — one numaheap JSON statistics dump as tables (render.c).
 */
#ifndef NH_TOOL_RENDER_H
#define NH_TOOL_RENDER_H

struct jv;

/* Print dump d, the index-th (from 1) of count, to standard output. */
void render_dump(const struct jv *d, int index, int count);

#endif
