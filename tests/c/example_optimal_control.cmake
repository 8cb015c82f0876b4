# CTest script (cmake -DMPIEXEC=... -DEXE=<optimal_control> -P this file): examples/c/
# optimal_control on 1, 2 and 3 ranks must succeed, print the same output on each, and end
# within 1e-6 of lambda* = -0.5. With %.12e, |lambda + 0.5| < 1e-6 exactly when the value
# reads -5.00000...e-01 or -4.99999...e-01 with a nonzero digit after the fives and nines.
set(_optimum "optimum lambda = -(5\\.00000[0-9]*|4\\.99999[0-9]*[1-9][0-9]*)e-01  \\(exact -0\\.5\\)")
foreach(np IN ITEMS 1 2 3)
  execute_process(COMMAND "${MPIEXEC}" -n ${np} "${EXE}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "optimal_control on ${np} ranks exited ${rc}:\n${out}${err}")
  endif()
  if(NOT out MATCHES "${_optimum}\n$")
    message(FATAL_ERROR "optimal_control on ${np} ranks did not reach lambda* within 1e-6:\n${out}")
  endif()
  if(np EQUAL 1)
    set(one "${out}")
  elseif(NOT out STREQUAL one)
    message(FATAL_ERROR "optimal_control prints other lines on ${np} ranks than on one:\n"
                        "${out}\none rank:\n${one}")
  endif()
endforeach()
message(STATUS "optimal_control: the same output on 1, 2 and 3 ranks, ending within 1e-6 of -0.5")
