"""Run a compression recipe: ``python compress.py -opt options/basicvsr_prune_qat.yml [--auto_resume | --restart]``."""
import argparse
import sys
from os import path as osp

import vsrcompress  # noqa: F401  (registers archs/models/datasets, makes basicsr run on CPU)
from vsrcompress.recipe import run_recipe
from vsrcompress.recipe.rerun import RerunRefused

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('-opt', required=True, help='recipe option file (a BasicSR option file with `recipe:`)')
    again = parser.add_mutually_exclusive_group()
    again.add_argument('--auto_resume', action='store_true',
                       help='reuse finished stages whose options and inputs are unchanged, resume an interrupted one')
    again.add_argument('--restart', action='store_true', help='train every stage again, also finished ones')
    args = parser.parse_args()
    try:
        run_recipe(args.opt, osp.dirname(osp.abspath(__file__)), args.auto_resume, args.restart)
    except RerunRefused as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        sys.exit(f'error: {err}')
    except KeyboardInterrupt:
        print('error: interrupted; the running stage stopped with its last checkpoint: rerun with --auto_resume to '
              'continue from it', file=sys.stderr)
        sys.exit(130)
