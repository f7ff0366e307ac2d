"""The homework builder moved to `helpers.course.homework`; this name stays for the chapters
and for `python -m helpers.homework OUT_DIR [CHAPTER.ipynb ...]`."""

from helpers.course.homework import (  # noqa: F401  (re-exported)
    EXERCISE_TAG,
    ROOT,
    SOLUTION_TAG,
    main,
    stub_source,
    strip_notebook,
)

if __name__ == "__main__":
    main()
