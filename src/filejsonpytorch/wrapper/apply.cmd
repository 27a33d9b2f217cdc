@echo off
rem Serves a trained model with the copy of filejsonpytorch in this directory, so that edits made
rem here take effect. The GATE host calls: apply.cmd MODELPREFIX METAFILE WRAPPERDIR [PARAMS...]
rem This script writes only to stderr: stdout belongs to the Python program.
setlocal
set "HERE=%~dp0"
set "HERE=%HERE:~0,-1%"
if defined PYTHONPATH (set "PYTHONPATH=%HERE%;%PYTHONPATH%") else (set "PYTHONPATH=%HERE%")
call "%HERE%\python.cmd"
if defined PY goto run

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
