@echo off
rem Serves a trained model with the copy of filejsonpytorch in this directory, so that edits made
rem here take effect. The GATE host calls: apply.cmd MODELPREFIX METAFILE WRAPPERDIR [PARAMS...]
rem This script writes only to stderr: stdout belongs to the Python program.
setlocal
set "HERE=%~dp0"
set "HERE=%HERE:~0,-1%"
if defined PYTHONPATH (set "PYTHONPATH=%HERE%;%PYTHONPATH%") else (set "PYTHONPATH=%HERE%")

rem A shell run by hand has no PYTHON_BIN from the host: take it from the data directory's yaml.
if not defined PYTHON_BIN call :yaml_python_bin
rem Users often quote paths in PYTHON_BIN; the quotes are added back where it is used.
if defined PYTHON_BIN set "PYTHON_BIN=%PYTHON_BIN:"=%"
set "PY="
set "TRIED="
if defined PYTHON_BIN call :try "%PYTHON_BIN%"
if not defined PY call :try python
if defined PY goto run
echo %~nx0: no usable Python (3.9 or newer, with torch installed). Tried:%TRIED% 1>&2
echo Set PYTHON_BIN (e.g. in FileJsonPyTorch.yaml in the data directory) to such an interpreter. 1>&2
rem Exiting would make the host fail at the first document with no message: answer every request
rem with the error instead, until end of input (set /p cannot tell an empty line from it) or STOP.
set "ERROR=the model cannot be served: no usable Python (3.9 or newer, with torch installed); tried:%TRIED%. Set PYTHON_BIN (e.g. in FileJsonPyTorch.yaml in the data directory) to such an interpreter."
set "ERROR=%ERROR:\=\\%"
setlocal EnableDelayedExpansion
:answer_errors
set "LINE="
set /p "LINE="
if not defined LINE exit /b 0
if "!LINE: =!"=="STOP" exit /b 0
echo {"status":"error","error":"!ERROR!"}
goto answer_errors

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
