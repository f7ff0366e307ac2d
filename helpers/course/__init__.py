"""The course machinery, kept apart from the explanation methods: exercise checks (one
module per chapter in `checks`), the homework builder and the grader."""
