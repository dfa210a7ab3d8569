"""One-YAML compression recipes: dense -> prune -> QAT -> export -> report in one resumable run."""
from vsrcompress.recipe.plan import STAGES, RecipePlan, parse_recipe
from vsrcompress.recipe.runner import load_recipe, run_recipe

__all__ = ['STAGES', 'RecipePlan', 'load_recipe', 'parse_recipe', 'run_recipe']
