# C tests of the MGRIT engine, included by tests/c/CMakeLists.txt.
#
# One line per test program; each rank count in NPROCS becomes its own CTest test
# (<name>_np<N>, run as: <mpiexec> -n <N> <exe> [ARGS...], 60 s timeout). Example:
#
#   layerbraid_add_mpi_test(NAME drive_scalar SOURCE test_drive_scalar.c NPROCS 1 2 4)
#   layerbraid_add_mpi_test(NAME options SOURCE test_options.c NPROCS 1 ARGS -ml 2)
#
# SOURCE paths are relative to tests/c. The program passes by exiting 0 on every rank.
