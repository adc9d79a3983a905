# nbgrader configuration for the ipseclab labs: copy it into your course directory (README.md).
c = get_config()  # noqa: F821 - nbgrader provides get_config

# generate_assignment turns each solution (### BEGIN SOLUTION ... ### END SOLUTION) into the
# placeholder the student notebooks in labs/ hold (ipseclab.teaching.grading.ANSWER_STUB).
c.ClearSolutions.code_stub = {"python": "answer = ...  # replace ... with your answer"}

# A check cell may run a whole fresh negotiation: give every cell more than the default 30 s.
c.Execute.timeout = 300
