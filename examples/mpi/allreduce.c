/* allreduce.c — the MPI program of examples/barrier_mpi.c: every rank
 * contributes rank + 1 to an MPI_Allreduce (sum); rank 0 writes the result
 * to the file named by argv[1]. With argv[2] = "fail", rank 1 aborts the
 * job instead, as a crashing training step would.
 */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc > 2 && strcmp(argv[2], "fail") == 0 && rank == 1) MPI_Abort(MPI_COMM_WORLD, 3);
  long mine = rank + 1, sum = 0;
  MPI_Allreduce(&mine, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  int rc = 0;
  if (rank == 0) {
    FILE *f = argc > 1 ? fopen(argv[1], "w") : NULL;
    if (!f || fprintf(f, "%ld %d\n", sum, size) < 0 || fclose(f) != 0) rc = 1;
  }
  MPI_Finalize();
  return rc;
}
