// Java's SunPKCS11 with a Stint task key, for tests/integration/java.sh:
//   java JavaSign.java CONFIG ALIAS   -> "verified" (exit 0), "no-key" (3)
// The KeyStore loads with no password (the token needs no login); the
// signature is verified with the certificate's key by the default provider.
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.security.cert.Certificate;

public class JavaSign {
    public static void main(String[] args) throws Exception {
        Provider p = Security.getProvider("SunPKCS11").configure(args[0]);
        KeyStore ks = KeyStore.getInstance("PKCS11", p);
        ks.load(null, null);
        PrivateKey key = (PrivateKey) ks.getKey(args[1], null);
        Certificate cert = ks.getCertificate(args[1]);
        if (key == null || cert == null) {
            System.out.println("no-key");
            System.exit(3);
        }
        String alg = key.getAlgorithm().equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
        byte[] msg = "stint java".getBytes(StandardCharsets.UTF_8);
        Signature s = Signature.getInstance(alg, p);
        s.initSign(key);
        s.update(msg);
        byte[] sig = s.sign();
        Signature v = Signature.getInstance(alg);
        v.initVerify(cert.getPublicKey());
        v.update(msg);
        boolean ok = v.verify(sig);
        System.out.println(ok ? "verified" : "bad-signature");
        System.exit(ok ? 0 : 1);
    }
}
