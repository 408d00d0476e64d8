"""The template's post-generation hook, reduced to what a non-Docker generation does to the files kept here:
secret keys in the local/test settings, the user manager removed for username users, and the dependencies
moved from requirements/*.txt into pyproject.toml + uv.lock with `uv add --no-sync` (requirements/ removed)."""
import random
import shutil
import string
import subprocess
import sys
from pathlib import Path

random = random.SystemRandom()


def generate_random_string(length):
    return "".join(random.choice(string.digits + string.ascii_letters) for _ in range(length))


def set_django_secret_key(path):
    text = path.read_text().replace("!!!SET DJANGO_SECRET_KEY!!!", generate_random_string(64))
    path.write_text(text)


def setup_dependencies():
    print("Installing python dependencies using uv...")
    uv_cmd = ["uv"]
    try:
        subprocess.run([*uv_cmd, "add", "--no-sync", "-r", "requirements/production.txt"], check=True)
        subprocess.run([*uv_cmd, "add", "--no-sync", "--dev", "-r", "requirements/local.txt"], check=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"Error installing dependencies: {e}", file=sys.stderr)
        sys.exit(1)
    shutil.rmtree("requirements")


def main():
    set_django_secret_key(Path("config", "settings", "local.py"))
    set_django_secret_key(Path("config", "settings", "test.py"))
    if "{{ cookiecutter.username_type }}" == "username":
        Path("{{cookiecutter.project_slug}}", "users", "managers.py").unlink(missing_ok=True)
    setup_dependencies()
    print("Project initialized, keep up the good work!")


if __name__ == "__main__":
    main()
