@echo off
rem Trains with the copy of filejsonpytorch in this directory, so that edits made here take effect.
rem The GATE host calls: train.cmd METAFILE MODELPREFIX [PARAMS...]
rem This script writes only to stderr: stdout belongs to the Python program.
setlocal
set "HERE=%~dp0"
set "HERE=%HERE:~0,-1%"
if defined PYTHONPATH (set "PYTHONPATH=%HERE%;%PYTHONPATH%") else (set "PYTHONPATH=%HERE%")
call "%HERE%\python.cmd"
if not defined PY exit /b 5
"%PY%" -m filejsonpytorch.train %*
exit /b %ERRORLEVEL%
