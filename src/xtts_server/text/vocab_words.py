"""Common words per language for the test vocabulary's merges (written as the front end outputs them:
lower case; Japanese in romaji, Korean in Hangul, romanised later; Chinese pinyin is generated)."""

from __future__ import annotations

COMMON_WORDS: dict[str, str] = {
    "en": (
        "the of and to in is you that it he was for on are as with his they at be this have from "
        "or one had by word but not what all were we when your can said there use an each which "
        "she do how their if will up other about out many then them these so some her would make "
        "like him into time has look two more write go see number no way could people my than "
        "first water been call who oil its now find long down day did get come made may part "
        "hello world thank please doctor mister street company percent dollar"
    ),
    "es": (
        "el la de que y a en un ser se no haber por con su para como estar tener le lo todo pero "
        "más hacer o poder decir este ir otro ese si me ya ver porque dar cuando él muy sin vez "
        "mucho saber qué sobre mi alguno mismo yo también hasta año dos querer entre así primero "
        "desde grande eso ni nos llegar pasar tiempo ella sí día uno bien poco deber entonces "
        "señor señora hola gracias niño"
    ),
    "fr": (
        "le de un être et à il avoir ne je son que se qui ce dans en du elle au pour pas que vous "
        "par sur faire plus dire me on mon lui nous comme mais pouvoir avec tout y aller voir en "
        "bien où sans tu ou leur homme si deux mari moi vouloir te femme venir quand grand celui "
        "notre devoir là jour prendre même votre rien petit encore aussi quelque dont tout mer "
        "trouver donner temps ça peu même falloir sous parler bonjour merci français très déjà où "
        "naïf noël cœur œuvre garçon"
    ),
    "de": (
        "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es "
        "an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen "
        "so zum war haben nur oder aber vor zur bis mehr durch man sein wurde sei hallo danke "
        "straße größe müssen können würde schön für zwölf fünf äpfel öl über"
    ),
    "it": (
        "di che è e la il un a per in una mi sono ho non ma l'ha lo ha le si ti i con cosa se io "
        "come da ci questo qui hai bene sei del tu mio no più al lei era gli per ciao grazie "
        "città perché però così già può virgola signore dottore"
    ),
    "pt": (
        "de a o que e do da em um para é com não uma os no se na por mais as dos como mas foi ao "
        "ele das tem à seu sua ou ser quando muito há nos já está eu também só pelo pela até isso "
        "ela entre era depois sem mesmo aos ter seus quem nas me esse eles estão você tinha foram "
        "essa num nem suas meu às minha têm olá obrigado coração ação pão irmã vírgula"
    ),
    "pl": (
        "nie się w na i z to że jest do jak co ale tak jestem o mnie czy ty mi za tylko już jak "
        "by co dobrze może wszystko jego być tu tego mam będzie jej więc go bardzo kiedy teraz "
        "dzień dobry dziękuję proszę cześć żółw źródło łódź pięć sześć"
    ),
    "tr": (
        "bir bu ve da de için ne ben çok o mi daha gibi var sen ama değil sonra kadar her şey en "
        "ile ki olarak merhaba teşekkür ederim günaydın iyi nasılsın evet hayır şimdi öğretmen "
        "çocuk güzel ışık yüzde"
    ),
    "ru": (
        "и в не на я быть он с что а по это она этот к но они мы как из у который то за свой что "
        "весь год от так о для ты же все тот мочь вы человек такой его сказать только или ещё бы "
        "себя один как уже до время если сам когда другой вот говорить наш мой знать стать при "
        "чтобы дело жизнь кто первый очень привет спасибо пожалуйста здравствуйте ёлка объём "
        "подъезд"
    ),
    "nl": (
        "de en een van ik te dat die in is het niet zijn je hij was op aan met als voor had er "
        "maar om hem dan zou of wat mijn men dit zo door over ze zich bij ook tot je mij uit der "
        "daar haar naar heb hoe heeft hallo dank alstublieft goedemorgen één twee"
    ),
    "cs": (
        "a se na v je že to s z do o jsem by k jak ale si za ve tak co mi není jsou jako po už "
        "jen pro ty když aby tam být jeho které bylo nebo ještě ani byl jsme ahoj děkuji prosím "
        "dobrý den čeština řeka žena ďábel ťuk ůl"
    ),
    "ar": (
        "في من على إلى أن عن مع هذا هذه كان التي الذي ما لا هو هي كل بين قد ذلك بعد كما أو حتى "
        "عند ثم مرحبا شكرا السلام عليكم كيف حالك نعم اليوم مدينة كتاب مدرسة"
    ),
    "hu": (
        "a az és hogy nem is egy meg van ez de csak már el ki még mint volt most ha mi vagy jó "
        "szia köszönöm kérem igen nem köszönöm szépen őszi tűz ütő"
    ),
    "hi": (
        "है के में की और से को का एक यह पर हैं भी नहीं था कि ने तो हो लिए कर जो गया ही दिया रहा "
        "नमस्ते धन्यवाद भारत हिंदी आप कैसे हैं ठीक अच्छा"
    ),
    "ko": (
        "안녕하세요 감사합니다 네 아니요 사랑 한국 한국어 학교 사람 "
        "시간 오늘 내일 친구 물엿 좋아요 미안합니다"
    ),
    "ja": (
        "watashi anata kore sore are desu masu arigatou gozaimasu konnichiha sayounara ohayou "
        "nihon tokyo kyou ashita hon gakkou sensei tomodachi taberu nomu iku kuru suru shi tsu "
        "chi fu ja sha sho shu cho chu kya kyu kyo nyu ryo gyo byo pyo"
    ),
}
