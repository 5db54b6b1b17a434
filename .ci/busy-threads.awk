# Reads dotnet-dump's `clrstack -all` and prints, for each managed thread that is doing something other than
# waiting for work (thread-pool workers, timers, the test host's own loops, the gateway's probes), its innermost
# frames: a hung test's blocking call, compactly, where pstacks' merged tree ran to hundreds of lines.
function flush(   i) {
  if (tid != "" && n > 0 && !idle) {
    print "thread " tid
    for (i = 1; i <= n && i <= 14; i++) print "    " f[i]
  }
  n = 0; idle = 0
}
/^OS Thread Id:/ { flush(); tid = $4; next }
/Child SP/ { next }
/^[0-9A-Fa-f]+ [0-9A-Fa-f]+ / {
  line = $0
  sub(/^[0-9A-Fa-f]+ [0-9A-Fa-f]+ /, "", line)
  if (line ~ /^\[/) next
  f[++n] = line
  if (n <= 3 && line ~ /LowLevelLifoSemaphore|TimerQueue\.TimerThread|GateThreadStart|FileSystemWatcher|ConsoleLoggerProcessor|Heartbeat\.TimerLoop|SocketAsyncEngine\.EventLoop/) idle = 1
  if (line ~ /DefaultEngineInvoker\.Invoke|Program\.<Main>|WaitForStopEvent|MessageLoopAsync|SchedulerDelayProbe\.Run|SocketEngineProbe\.Send|WaitThreadStart|TestRequestHandler\.ProcessRequests|MessageBus\.ReporterWorker|RunTestsInAssemblyAsync|VsTestRunner\.RunTests\(/) idle = 1
}
END { flush() }
