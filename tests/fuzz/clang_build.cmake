# clang_build.cmake — build a program with clang whatever the project's
# compiler is (the fuzzer needs clang's libFuzzer, TSan runs use clang's
# runtime): custom commands, one object per source, then a link.
#
#   hx_find_clang()   sets HX_CLANG, HX_CLANGXX and HX_LIBFUZZER (the libFuzzer
#                     archive, or empty) in the caller's scope
#   hx_clang_program(NAME <name> OUTPUT <path>
#                    C_SOURCES ... CXX_SOURCES ... INCLUDES ...
#                    CFLAGS ... CXXFLAGS ... LDFLAGS ... LIBS ...)
#                     adds target <name> (built by default) producing <path>

function(hx_find_clang)
  find_program(HX_CLANG NAMES clang-14 clang)
  find_program(HX_CLANGXX NAMES clang++-14 clang++)
  set(fuzzer "")
  if(HX_CLANG)
    execute_process(COMMAND ${HX_CLANG} -print-resource-dir OUTPUT_VARIABLE res OUTPUT_STRIP_TRAILING_WHITESPACE
      ERROR_QUIET)
    if(EXISTS "${res}/lib/linux/libclang_rt.fuzzer-x86_64.a")
      set(fuzzer "${res}/lib/linux/libclang_rt.fuzzer-x86_64.a")
    endif()
  endif()
  set(HX_LIBFUZZER "${fuzzer}" PARENT_SCOPE)
endfunction()

function(hx_clang_program)
  cmake_parse_arguments(A "" "NAME;OUTPUT" "C_SOURCES;CXX_SOURCES;INCLUDES;CFLAGS;CXXFLAGS;LDFLAGS;LIBS" ${ARGN})
  set(objdir ${CMAKE_CURRENT_BINARY_DIR}/${A_NAME}.objs)
  file(MAKE_DIRECTORY ${objdir})
  set(incs)
  foreach(i ${A_INCLUDES})
    list(APPEND incs -I${i})
  endforeach()
  set(objs)
  foreach(lang C CXX)
    if(lang STREQUAL C)
      set(cc ${HX_CLANG})
      set(flags ${A_CFLAGS})
      set(srcs ${A_C_SOURCES})
    else()
      set(cc ${HX_CLANGXX})
      set(flags ${A_CXXFLAGS})
      set(srcs ${A_CXX_SOURCES})
    endif()
    foreach(src ${srcs})
      get_filename_component(base ${src} NAME)
      set(obj ${objdir}/${base}.o)
      add_custom_command(OUTPUT ${obj}
        COMMAND ${cc} ${flags} ${incs} -MD -MF ${obj}.d -c ${src} -o ${obj}
        DEPENDS ${src}
        DEPFILE ${obj}.d
        COMMENT "clang: ${A_NAME}: ${base}"
        VERBATIM)
      list(APPEND objs ${obj})
    endforeach()
  endforeach()
  add_custom_command(OUTPUT ${A_OUTPUT}
    COMMAND ${HX_CLANGXX} ${A_LDFLAGS} ${objs} ${A_LIBS} -o ${A_OUTPUT}
    DEPENDS ${objs}
    COMMENT "clang: linking ${A_NAME}"
    VERBATIM)
  add_custom_target(${A_NAME} ALL DEPENDS ${A_OUTPUT})
endfunction()
