@echo off
rem Called by train.cmd, apply.cmd and evaluate.cmd (which set HERE): sets PY to the first usable one
rem of PYTHON_BIN and python (Python 3.9 or newer with torch); otherwise PY stays empty and TRIED
rem lists what was tried.

rem A shell run by hand has no PYTHON_BIN from the host: take it from the data directory's yaml.
if not defined PYTHON_BIN call :yaml_python_bin
rem Users often quote paths in PYTHON_BIN; the quotes are added back where it is used.
if defined PYTHON_BIN set "PYTHON_BIN=%PYTHON_BIN:"=%"
set "PY="
set "TRIED="
if defined PYTHON_BIN call :try "%PYTHON_BIN%"
if not defined PY call :try python
if not defined PY echo %~nx0: no usable Python (3.9 or newer, with torch installed). Tried:%TRIED% 1>&2
if not defined PY echo Set PYTHON_BIN (e.g. in FileJsonPyTorch.yaml in the data directory) to such an interpreter. 1>&2
exit /b 0

rem Sets PY to %1 if it is Python 3.9 or newer and can import torch; otherwise adds it to TRIED.
:try
"%~1" -c "import sys, importlib.util; sys.exit(sys.version_info < (3, 9) or importlib.util.find_spec('torch') is None)" >nul 2>nul
if errorlevel 1 (set "TRIED=%TRIED% [%~1]") else (set "PY=%~1")
exit /b 0

rem Sets PYTHON_BIN from FileJsonPyTorch.yaml in the data directory (the parent of this one).
:yaml_python_bin
set "DATADIR=%GATE_LF_DATA_DIR%"
if not defined DATADIR for %%D in ("%HERE%\..") do set "DATADIR=%%~fD"
for %%Y in ("%DATADIR%\FileJsonPyTorch.yaml" "%DATADIR%\FileJsonPyTorch.yaml.txt") do (
  if not defined PYTHON_BIN if exist %%Y (
    for /f "tokens=1,* delims=: " %%a in ('findstr /b /c:"PYTHON_BIN:" %%Y') do set "PYTHON_BIN=%%b"
  )
)
exit /b 0
