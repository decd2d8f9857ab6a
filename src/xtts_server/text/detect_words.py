"""Evidence for language="auto" on short Latin-script text: frequent words and telling letters.

A statistical model of letter n-grams needs a few words of text; on two or three ("Hello John!",
"Hoi Jan!", "A domani.") it guesses, and names pull it anywhere. Short everyday phrases are made of
the most frequent words of a language (pronouns, articles, greetings, "yes", "today"), so a lexicon
of those settles most of them. Lower case, one word per entry as `\\w+` splits text ("aujourd'hui"
is "aujourd" and "hui"); a word listed for several languages counts for each in proportion.
"""

from __future__ import annotations

FREQUENT_WORDS: dict[str, str] = {
    "en": (
        "the a an and or but of to in on at for with from by about over is are was were be been am i you "
        "he she it we they me him her us them my your his our their this that these those what who "
        "where when why how which yes no not do does did have has had will would can could should "
        "hello hi hey thanks thank please good morning evening today tomorrow yesterday there here "
        "now very so just all one two three sorry okay see later night know"
    ),
    "es": (
        "el la los las un una unos unas y o pero de del al en con por para sin sobre es son era fue "
        "está están estoy soy eres yo tú él ella nosotros ellos usted me te se lo le nos mi tu su "
        "qué quién dónde cuándo cómo cuál sí no hola gracias buenos buenas días noches tardes hoy "
        "mañana ayer aquí ahora muy más también todo bien hay tengo tiene hace puedo quiero este "
        "esta eso esto claro porque que hasta luego adiós vale"
    ),
    "fr": (
        "le la les un une des et ou mais de du au aux en dans avec pour par sur sans est sont était "
        "suis es être avoir ai as a avons je tu il elle nous vous ils elles me te se moi toi lui "
        "leur mon ma mes ton ta son sa ses ce cette ces qui que quoi où quand pourquoi comment oui "
        "non ne pas bonjour bonsoir salut merci beaucoup aujourd hui demain hier ici maintenant "
        "très plus aussi tout bien y ça va vais fait peux veux"
    ),
    "de": (
        "der die das den dem des ein eine einen einem und oder aber von zu zum zur im in an am auf um "
        "für mit aus bei nach über ist sind war waren bin bist sein habe hat haben ich du er sie es "
        "wir ihr mich dich mir dir uns mein dein was wer wo wann warum wie welche ja nein nicht "
        "kein keine hallo danke bitte guten morgen tag abend heute gestern hier jetzt sehr mehr "
        "auch alles gut gibt kann will schon noch nur weiß dank"
    ),
    "it": (
        "il lo la i gli le un uno una e o ma di del della dei a al alla da in nel nella con per su "
        "senza è sono era ero sei siamo ho hai ha abbiamo io tu lui lei noi voi loro mi ti si ci "
        "mio mia tuo tua suo sua che chi dove quando perché come quale sì no non ciao grazie "
        "buongiorno buonasera oggi domani ieri qui qua adesso ora molto più anche tutto bene "
        "questo questa quello posso voglio"
    ),
    "pt": (
        "o a os as um uma uns umas e ou mas de do da dos das em no na nos nas com por para sem "
        "sobre é são era foi está estão estou sou eu tu ele ela nós eles elas você me te se lhe "
        "meu minha teu tua seu sua que quem onde quando porque como qual sim não olá oi obrigado "
        "obrigada bom boa dia noite tarde hoje amanhã ontem aqui agora muito mais também tudo bem "
        "há tenho tem posso quero isso isto este esta até"
    ),
    "pl": (
        "i a w z na do od po za ze we o u dla bez przez jest są był była było jestem jesteś ja ty "
        "on ona ono my wy oni one mnie mi cię ci go jej nas was mój moja twój twoja co kto gdzie "
        "kiedy dlaczego jak który tak nie cześć dzień dobry dziękuję proszę dzisiaj dziś jutro "
        "wczoraj tu tutaj teraz bardzo więcej też także wszystko dobrze mam ma masz może chcę to "
        "ten ta te się że"
    ),
    "tr": (
        "bir ve veya ama ile için de da bu şu o ben sen biz siz onlar beni seni bana sana benim "
        "senin onun bizim ne kim nerede zaman neden nasıl hangi evet hayır değil yok var merhaba "
        "teşekkür teşekkürler ederim lütfen günaydın iyi akşamlar bugün yarın dün burada şimdi çok "
        "daha her şey güzel mi mı mu mü tamam"
    ),
    "nl": (
        "de het een en of maar van in op aan met voor door uit bij naar over is zijn was waren ben "
        "bent heb hebt heeft hebben ik jij je hij zij ze wij we jullie mij me mijn jouw haar ons "
        "wat wie waar wanneer waarom hoe welke ja nee niet geen hallo hoi dag dank bedankt "
        "alstublieft alsjeblieft goedemorgen goedenavond vandaag morgen gisteren hier nu heel erg "
        "meer ook alles goed er kan wil dat dit die"
    ),
    "cs": (
        "a i v ve z ze na do od po za o u k pro bez přes je jsou byl byla bylo jsem jsi já ty on "
        "ona ono my vy oni mě mi tě ti ho jí nás vás můj moje tvůj tvoje co kdo kde kdy proč jak "
        "který ano ne ahoj dobrý dobré den děkuji prosím dnes zítra včera tady teď velmi víc také "
        "všechno dobře mám má máš může chci to ten ta se že není"
    ),
    "hu": (
        "a az egy és vagy de hogy nem igen van vannak volt voltam vagyok ő mi ti ők engem téged "
        "nekem neked mit ki hol mikor miért hogyan melyik szia szervusz köszönöm kérem jó reggelt "
        "napot estét ma holnap tegnap itt most nagyon több is minden jól kell lehet ez azt ezt"
    ),
}

#: Letters (and the Spanish opening marks) that among the 11 Latin-script languages only one writes.
TELLING_LETTERS: dict[str, str] = {
    "es": "ñ¿¡",
    "pl": "łąęśźżćń",
    "cs": "řůěťďň",
    "hu": "őű",
    "tr": "şğıİ",
    "de": "ß",
    "pt": "ãõ",
    "fr": "œ",
}
