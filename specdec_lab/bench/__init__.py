"""The benchmark: a mini Spec-Bench on the bundled models (or Spec-Bench itself on any pair), measured side by side.

    specdec-lab bench --prompts-per-task 5 --out bench-report      # the console script
    from specdec_lab.bench import read_questions, run_benchmark, write_report   # the same from a notebook
"""

from .report import check_out_folder, to_html, to_markdown, write_report
from .runner import BenchSettings, all_methods, default_methods, parse_methods, run_benchmark
from .tasks import MINIBENCH, Question, read_questions

__all__ = ["MINIBENCH", "BenchSettings", "Question", "all_methods", "check_out_folder", "default_methods", "parse_methods",
           "read_questions", "run_benchmark", "to_html", "to_markdown", "write_report"]
