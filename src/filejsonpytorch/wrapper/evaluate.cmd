@echo off
rem Scores a trained model on a labeled LF data file with the copy of filejsonpytorch in this
rem directory (and its modules\, as train.cmd and apply.cmd do): evaluate.cmd MODELPREFIX DATAFILE [--json]
setlocal
set "HERE=%~dp0"
set "HERE=%HERE:~0,-1%"
if defined PYTHONPATH (set "PYTHONPATH=%HERE%;%PYTHONPATH%") else (set "PYTHONPATH=%HERE%")
call "%HERE%\python.cmd"
if not defined PY exit /b 5
"%PY%" -m filejsonpytorch.evaluate %*
exit /b %ERRORLEVEL%
