/**
 * Stand-in values for memory words whose real value a text source hid: crash `rd -S` prints
 * `[kmalloc-64]` for a slab pointer and a symbol name for a symbol, not the hex. The rd parser writes
 * these high halves (low half: a hash of the text) until symbols are resolved; the scan scores an opaque
 * slab pointer as a heap pointer and the symbolizer names both. A neutral home, so that neither the scan
 * engine (and its workers) nor the symbolizer depends on a text parser.
 */
export const OPAQUE_SLAB_POINTER_HI = 0x0bad5aab;
export const OPAQUE_SYMBOL_HI = 0x0bad5ab1;
