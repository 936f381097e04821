# Runs a command on a pseudo-terminal of the given width, as a person's terminal would run it, and
# writes everything it drew to stdout; exits with the command's exit code.
# usage: python3 on-pty.py <columns> <command> [args…]
import fcntl
import os
import pty
import struct
import sys
import termios

columns = int(sys.argv[1])
command = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    # The child's stdin is the terminal: give it a size before the program asks for one.
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 24, columns, 0, 0))
    os.execvp(command[0], command)

drawn = bytearray()
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:  # EIO: the program exited and the terminal closed
        break
    if not chunk:
        break
    drawn += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(bytes(drawn))
sys.stdout.flush()
sys.exit(os.waitstatus_to_exitcode(status))
