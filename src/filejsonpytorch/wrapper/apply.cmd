@echo off
rem Serves a trained model with the copy of filejsonpytorch in this directory, so that edits made
rem here take effect. The GATE host calls: apply.cmd MODELPREFIX METAFILE WRAPPERDIR [PARAMS...]
rem This script writes only to stderr: stdout belongs to the Python program.
setlocal
set "HERE=%~dp0"
set "HERE=%HERE:~0,-1%"
if defined PYTHONPATH (set "PYTHONPATH=%HERE%;%PYTHONPATH%") else (set "PYTHONPATH=%HERE%")

rem Users often quote paths in PYTHON_BIN; the quotes are added back where it is used.
if defined PYTHON_BIN set "PYTHON_BIN=%PYTHON_BIN:"=%"
set "PY="
set "TRIED="
if defined PYTHON_BIN call :try "%PYTHON_BIN%"
if not defined PY call :try python
if defined PY goto run
echo %~nx0: no usable Python (3.9 or newer, with torch installed). Tried:%TRIED% 1>&2
echo Set PYTHON_BIN (e.g. in FileJsonPyTorch.yaml in the data directory) to such an interpreter. 1>&2
exit /b 5

:run
rem WRAPPERDIR (the third argument) is not passed on; %* cannot drop arguments, so collect the rest.
set "MODEL=%~1"
set "META=%~2"
set "REST="
shift & shift & shift
:collect
if "%~1"=="" goto start
set "REST=%REST% %1"
shift
goto collect

:start
"%PY%" -m filejsonpytorch.apply "%MODEL%" --metafile "%META%"%REST%
exit /b %ERRORLEVEL%

rem Sets PY to %1 if it is Python 3.9 or newer and can import torch; otherwise adds it to TRIED.
:try
"%~1" -c "import sys, importlib.util; sys.exit(sys.version_info < (3, 9) or importlib.util.find_spec('torch') is None)" >nul 2>nul
if errorlevel 1 (set "TRIED=%TRIED% [%~1]") else (set "PY=%~1")
exit /b 0
