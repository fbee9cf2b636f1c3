// Test service: com.sun.net.httpserver with a thread pool, nobody instrumented it.
//   GET /ok, /items/<id> -> 200; /fail -> 500; /missing -> 404; POST /echo -> echoes the body;
//   GET /call?url=U -> calls U (HttpURLConnection) from the handling thread.
// Usage: java Server.java PORT   (or javac + java -cp)
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;

public class Server {
  static void reply(HttpExchange ex, int status, byte[] body) throws java.io.IOException {
    ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
    try (OutputStream os = ex.getResponseBody()) {
      os.write(body);
    }
  }

  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[0]);
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
    server.createContext("/", ex -> {
      String path = ex.getRequestURI().getPath();
      if (ex.getRequestMethod().equals("POST")) {
        byte[] body = ex.getRequestBody().readAllBytes();
        reply(ex, 200, body);
      } else if (path.equals("/call")) {
        // Calls ?url=... from this pool thread (HttpURLConnection, keep-alive pool).
        String url = java.net.URLDecoder.decode(ex.getRequestURI().getRawQuery().substring(4), StandardCharsets.UTF_8);
        java.net.HttpURLConnection c = (java.net.HttpURLConnection) new java.net.URL(url).openConnection();
        int status = c.getResponseCode();
        byte[] body = (status < 400 ? c.getInputStream() : c.getErrorStream()).readAllBytes();
        reply(ex, 200, (status + " " + new String(body, StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8));
      } else if (path.equals("/fail")) {
        reply(ex, 500, "boom".getBytes(StandardCharsets.UTF_8));
      } else if (path.equals("/missing")) {
        reply(ex, 404, "no".getBytes(StandardCharsets.UTF_8));
      } else {
        reply(ex, 200, ("ok " + path).getBytes(StandardCharsets.UTF_8));
      }
    });
    server.setExecutor(Executors.newFixedThreadPool(4));
    server.start();
    System.out.println("listening " + port);
  }
}
