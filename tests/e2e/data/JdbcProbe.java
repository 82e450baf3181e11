// What DBeaver and Metabase ask a PostgreSQL server through JDBC's DatabaseMetaData on connect,
// run against the gristmill wire door by tests/e2e/test_serving_sql.py (java JdbcProbe.java PORT).
import java.sql.*;

public class JdbcProbe {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/shop";
        try (Connection c = DriverManager.getConnection(url, "bi", "")) {
            DatabaseMetaData m = c.getMetaData();
            System.out.println("product " + m.getDatabaseProductName());
            try (ResultSet r = m.getSchemas()) {
                while (r.next()) System.out.println("schema " + r.getString(1));
            }
            try (ResultSet r = m.getTables(null, "marts", "%", new String[] {"TABLE", "VIEW"})) {
                while (r.next()) System.out.println("table " + r.getString(2) + "." + r.getString(3));
            }
            try (ResultSet r = m.getColumns(null, "marts", "dim_track", "%")) {
                while (r.next()) System.out.println("column " + r.getString(4) + " " + r.getString(6));
            }
            try (ResultSet r = m.getPrimaryKeys(null, "marts", "dim_track")) {
                while (r.next()) System.out.println("key " + r.getString(4));
            }
            try (ResultSet r = m.getTables(null, "metrics", "%", new String[] {"TABLE", "VIEW"})) {
                while (r.next()) System.out.println("table " + r.getString(2) + "." + r.getString(3));
            }
            try (ResultSet r = m.getColumns(null, "metrics", "revenue", "%")) {
                while (r.next()) System.out.println("column metrics.revenue." + r.getString(4) + " " + r.getString(6));
            }
            try (ResultSet r = m.getImportedKeys(null, "marts", "dim_track")) {
                while (r.next()) System.out.println("imported " + r.getString(4));
            }
            try (ResultSet r = m.getIndexInfo(null, "marts", "dim_track", false, true)) {
                while (r.next()) System.out.println("index " + r.getString(6));
            }
            String metric = "select revenue from metrics.revenue where country = ?";
            try (PreparedStatement p = c.prepareStatement(metric)) {
                p.setString(1, "Germany");
                try (ResultSet r = p.executeQuery()) {
                    while (r.next()) System.out.println("metric " + r.getBigDecimal(1));
                }
            }
            String sql = "select unit_price from marts.dim_track where track_name = ?";
            try (PreparedStatement p = c.prepareStatement(sql)) {
                p.setString(1, "Balls to the Wall");
                try (ResultSet r = p.executeQuery()) {
                    while (r.next()) System.out.println("value " + r.getBigDecimal(1));
                }
            }
        }
    }
}
