// The C reply reader, compiled into this package.
#include "../../src/reply.c"
