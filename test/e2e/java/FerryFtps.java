// FerryFtps drives Apache Commons Net's FTPSClient against a Ferry server
// over explicit FTPS with protected data connections (PROT P), through
// every operation the e2e test checks. Arguments: host port user pass mode,
// where mode is "plain" (FTPSClient as it is: it never resumes the control
// session on data connections) or "hack" (the widely copied subclass that
// puts the control connection's SSLSession into the JDK's session cache
// under the data connection's host:port, by reflection, so that the data
// connection resumes it). It prints one line per operation and JAVA-OK at
// the end; on a failure it prints the last reply and exits 1.
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.net.Socket;
import java.util.Arrays;
import java.util.Locale;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSessionContext;
import javax.net.ssl.SSLSocket;
import org.apache.commons.net.ftp.FTP;
import org.apache.commons.net.ftp.FTPFile;
import org.apache.commons.net.ftp.FTPSClient;
import org.apache.commons.net.util.TrustManagerUtils;

public class FerryFtps {
    /** The session-reuse hack as it circulates (Stack Overflow 32398387 and many copies). */
    static class Client extends FTPSClient {
        final boolean hack;

        Client(boolean hack) {
            super("TLS", false);
            this.hack = hack;
        }

        String tlsVersion() { return ((SSLSocket) _socket_).getSession().getProtocol(); }

        @Override
        protected void _prepareDataSocket_(final Socket socket) throws IOException {
            if (hack && socket instanceof SSLSocket) {
                final SSLSession session = ((SSLSocket) _socket_).getSession();
                if (session.isValid()) {
                    final SSLSessionContext context = session.getSessionContext();
                    try {
                        final Field sessionHostPortCache = context.getClass().getDeclaredField("sessionHostPortCache");
                        sessionHostPortCache.setAccessible(true);
                        final Object cache = sessionHostPortCache.get(context);
                        final Method method = cache.getClass().getDeclaredMethod("put", Object.class, Object.class);
                        method.setAccessible(true);
                        method.invoke(cache, String.format("%s:%s", socket.getInetAddress().getHostName(),
                                String.valueOf(socket.getPort())).toLowerCase(Locale.ROOT), session);
                        method.invoke(cache, String.format("%s:%s", socket.getInetAddress().getHostAddress(),
                                String.valueOf(socket.getPort())).toLowerCase(Locale.ROOT), session);
                    } catch (Exception e) {
                        throw new IOException(e);
                    }
                } else {
                    throw new IOException("Invalid SSL Session");
                }
            }
        }
    }

    static Client ftp;

    interface Op {
        boolean run() throws IOException;
    }

    /** step runs one operation; an IOException (a refused data connection) is a failure with the reply that follows it. */
    static void step(String what, Op op) {
        boolean ok;
        try {
            ok = op.run();
        } catch (IOException e) {
            String reply;
            try {
                ftp.getReply();
                reply = ftp.getReplyString().trim();
            } catch (IOException e2) {
                reply = "(none: " + e2 + ")";
            }
            System.out.println("FAIL " + what + ": " + e + "; last reply " + reply);
            System.exit(1);
            return;
        }
        check(ok, what);
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            System.out.println("FAIL " + what + ": last reply " + ftp.getReplyString().trim());
            System.exit(1);
        }
        System.out.println("ok " + what);
    }

    static byte[] retr(String name, long rest) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ftp.setRestartOffset(rest);
        step("RETR " + name + " from " + rest, () -> ftp.retrieveFile(name, out));
        return out.toByteArray();
    }

    public static void main(String[] args) throws Exception {
        String host = args[0], user = args[2], pass = args[3], mode = args[4];
        int port = Integer.parseInt(args[1]);
        ftp = new Client(mode.equals("hack"));
        ftp.setTrustManager(TrustManagerUtils.getAcceptAllTrustManager());
        ftp.setDefaultTimeout(30000);
        ftp.setConnectTimeout(30000);
        ftp.connect(host, port);
        check(ftp.login(user, pass), "login");
        ftp.execPBSZ(0);
        ftp.execPROT("P");
        ftp.enterLocalPassiveMode();
        check(ftp.setFileType(FTP.BINARY_FILE_TYPE), "TYPE I");
        System.out.println("tls " + ftp.tlsVersion());

        byte[] data = new byte[300000];
        for (int i = 0; i < data.length; i++) data[i] = (byte) (i * 31 + 7);
        step("STOR", () -> ftp.storeFile("j.bin", new ByteArrayInputStream(data)));
        check(Arrays.equals(retr("j.bin", 0), data), "RETR content");
        step("APPE", () -> ftp.appendFile("j.bin", new ByteArrayInputStream(new byte[] {1, 2, 3})));
        byte[] tail = retr("j.bin", 299998);
        check(Arrays.equals(tail, new byte[] {data[299998], data[299999], 1, 2, 3}), "REST+RETR content");
        ftp.setRestartOffset(300000);
        step("REST+STOR", () -> ftp.storeFile("j.bin", new ByteArrayInputStream(new byte[] {9})));
        check(retr("j.bin", 0).length == 300001, "size after REST+STOR");
        FTPFile[] list = ftp.listFiles();
        check(list != null && list.length == 1 && list[0].getName().equals("j.bin") && list[0].getSize() == 300001, "LIST");
        String[] names = ftp.listNames();
        check(names != null && names.length == 1 && names[0].endsWith("j.bin"), "NLST");
        FTPFile[] ml = ftp.mlistDir(); // with the type=cdir entry "." (RFC 3659 §7.5.1)
        ml = Arrays.stream(ml).filter(f -> !f.getName().equals(".")).toArray(FTPFile[]::new);
        check(ml.length == 1 && ml[0].getName().equals("j.bin") && ml[0].getSize() == 300001, "MLSD");
        check(ftp.rename("j.bin", "k.bin"), "RNFR/RNTO");
        check(ftp.deleteFile("k.bin"), "DELE");
        check(ftp.listNames().length == 0, "NLST after DELE");
        ftp.logout();
        ftp.disconnect();
        System.out.println("JAVA-OK");
    }
}
