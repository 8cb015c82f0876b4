# C tests of the MGRIT engine, included by tests/c/CMakeLists.txt.
#
# One line per test program; each rank count in NPROCS becomes its own CTest test
# (<name>_np<N>, run as: <mpiexec> -n <N> <exe> [ARGS...], hang limit LAYERBRAID_TEST_TIMEOUT,
# 240 s). SOURCE paths are relative to tests/c. A program passes by exiting 0 on every rank.

layerbraid_add_mpi_test(NAME bad_input SOURCE test_bad_input.c NPROCS 1 2)
layerbraid_add_mpi_test(NAME sequential SOURCE test_sequential.c NPROCS 1 2 3 4)
layerbraid_add_mpi_test(NAME warm_restart SOURCE test_warm_restart.c NPROCS 1 3)
layerbraid_add_mpi_test(NAME divergence SOURCE test_divergence.c NPROCS 1 2 4)
layerbraid_add_mpi_test(NAME testall SOURCE test_testall.c NPROCS 1 2)
layerbraid_add_mpi_test(NAME engine_limits SOURCE test_engine_limits.c NPROCS 1 2 3)
layerbraid_add_mpi_test(NAME status SOURCE test_status.c NPROCS 1 2 3 4)
layerbraid_add_mpi_test(NAME dropin SOURCE test_dropin.c NPROCS 1 2 3 4 5)
layerbraid_add_mpi_test(NAME richardson SOURCE test_richardson.c NPROCS 1 2 3)
layerbraid_add_mpi_test(NAME shell_fullres SOURCE test_shell_fullres.c NPROCS 1 2 3)
layerbraid_add_mpi_test(NAME refine SOURCE test_refine.c NPROCS 1 2 3)
layerbraid_add_mpi_test(NAME periodic SOURCE test_periodic.c NPROCS 1 2 3)
layerbraid_add_mpi_test(NAME rspace SOURCE test_rspace.c NPROCS 1 2 3)
layerbraid_add_mpi_test(NAME adjoint SOURCE test_adjoint.c NPROCS 1 2 3)
layerbraid_add_mpi_test(NAME delta SOURCE test_delta.c NPROCS 1 2 3)
layerbraid_add_mpi_test(NAME profile SOURCE test_profile.c NPROCS 1 2)
