"""uv's static binary out of its wheel, as it is: no virtualenv and no pip around it.

argv: the uv wheel, where to write the binary (made executable). Used by
scripts/python.sh in the image and by the bench's floor (builder/bench/targets.py).
"""
import os
import shutil
import sys
import zipfile

wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/scripts/uv"))
    with z.open(name) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
os.chmod(dest, 0o755)
