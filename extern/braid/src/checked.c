/*
 * Overflow-checked size arithmetic and allocations that report their failure (checked.h).
 */
#include <stdint.h>
#include <stdlib.h>

#include "core_internal.h"

int _braid_AddInt(braid_Int a, braid_Int b, braid_Int *sum)
{
   if ((b > 0 && a > INT_MAX - b) || (b < 0 && a < INT_MIN - b)) return 1;
   *sum = a + b;
   return 0;
}

int _braid_MulInt(braid_Int a, braid_Int b, braid_Int *product)
{
   long long p = (long long) a * (long long) b; /* exact: both factors fit 32 bits */
   if (p > INT_MAX || p < INT_MIN) return 1;
   *product = (braid_Int) p;
   return 0;
}

braid_Int _braid_CeilDiv(braid_Int a, braid_Int b)
{
   return a / b + (a % b != 0 ? 1 : 0);
}

braid_Int _braid_RoundUp(braid_Int a, braid_Int m)
{
   braid_Int r;
   return _braid_MulInt(_braid_CeilDiv(a, m), m, &r) ? INT_MAX : r;
}

/* count * size in bytes, or 1 when that does not fit size_t (or count < 0) */
static int array_bytes(braid_Int count, size_t size, size_t *bytes)
{
   size_t n = count > 0 ? (size_t) count : 1;
   if (count < 0 || (size != 0 && n > SIZE_MAX / size)) return 1;
   *bytes = n * size;
   return 0;
}

braid_Int _braid_OutOfMemory(braid_Core core, const char *what, braid_Int count, size_t size)
{
   char bytes[64];
   if (core->failed) return braid_ERROR_MEMORY; /* already reported */
   core->failed = 1;
   core->failure_rank = core->myid;
   if (size == 1) snprintf(bytes, sizeof(bytes), "%d bytes", (int) count);
   else snprintf(bytes, sizeof(bytes), "%d x %lu bytes", (int) count, (unsigned long) size);
   snprintf(core->failure_text, sizeof(core->failure_text),
            "rank %d: out of memory: cannot allocate %s (%s) at iteration %d (ntime = %d)",
            core->myid, what, bytes, (int) core->iter, (int) core->ntime);
   if (!core->quiet_failures)
   {
      _braid_Error("braid_Drive", "%s; stopping the solve", core->failure_text);
   }
   _braid_NotifyFailure(core);
   return braid_ERROR_MEMORY;
}

void *_braid_Calloc(braid_Core core, const char *what, braid_Int count, size_t size)
{
   size_t bytes;
   void *p = NULL;
   if (!array_bytes(count, size, &bytes)) p = calloc(1, bytes > 0 ? bytes : 1);
   if (p == NULL) _braid_OutOfMemory(core, what, count, size);
   return p;
}

braid_Int _braid_HistoryAppend(braid_Core core, const char *what, braid_Real **values,
                               braid_Int *n, braid_Int *capacity, braid_Real value)
{
   if (*n == *capacity)
   {
      braid_Int grown = 16, err;
      void *history = *values;
      if (*capacity > 0 && _braid_MulInt(*capacity, 2, &grown)) grown = INT_MAX;
      if (*n == grown)
      {
         _braid_Error("braid_Drive", "%s is full (%d entries)", what, (int) grown);
         return braid_ERROR_GENERIC;
      }
      err = _braid_Realloc(core, what, &history, grown, sizeof(braid_Real));
      if (err) return err;
      *values = (braid_Real *) history;
      *capacity = grown;
   }
   (*values)[(*n)++] = value;
   return 0;
}

braid_Int _braid_Realloc(braid_Core core, const char *what, void **ptr, braid_Int count,
                         size_t size)
{
   size_t bytes;
   void *p = NULL;
   if (!array_bytes(count, size, &bytes)) p = realloc(*ptr, bytes > 0 ? bytes : 1);
   if (p == NULL) return _braid_OutOfMemory(core, what, count, size);
   *ptr = p;
   return 0;
}
