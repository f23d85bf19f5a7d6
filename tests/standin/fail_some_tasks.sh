#!/bin/bash
# TEST DOUBLE wrapper around the stand-in flow: the array tasks listed in OLP_TEST_FAIL_TASKS
# (comma-separated task indices) exit with OLP_TEST_FAIL_CODE (default 3) without running;
# every other task runs tests/standin/openlane_standin.py with the same arguments.
case ",${OLP_TEST_FAIL_TASKS:-}," in
    *",${TASK_ID:-none},"*)
        echo "fail_some_tasks.sh: injected failure of task ${TASK_ID}" >&2
        exit "${OLP_TEST_FAIL_CODE:-3}"
        ;;
esac
exec "$(dirname "$0")/openlane_standin.py" "$@"
